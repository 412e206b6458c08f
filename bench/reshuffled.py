"""What a batch-size change costs under shuffle: the sampled reshuffled ball, with and without its control variate.

A user pressing ] or [ in the app pays, on the step path, for the new setting's
prediction (bsim.stats.epoch_stationary: the epoch map's stationary moments over
sampled permutations) and, when the ball's law is drawn, its curves. This times
set_batch_size, one step and a frame with the curves, per batch size visited, on
the default scenario (shuffle) and shuffle-vs-iid switched to shuffle, in two arms
alternating in one run: "control" (the exact additive model as control variate,
what bsim does) and "plain" (the plain mean over permutations to the same SE
target, ``epoch_stationary.CONTROL = False``). Prints per arm the median and the
largest time of a change, the ratio, and the permutations the prediction at B = 8 took.

    python bench/reshuffled.py [--smoke] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.scenario import apply_overrides, find_scenario, load_scenario  # noqa: E402
from bsim.simulation import Simulation  # noqa: E402
from bsim.stats.ball import BallCache, quad_model  # noqa: E402
from bsim.stats import epoch_map, epoch_stationary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (("default", None), ("shuffle-vs-iid", ROOT / "scenarios" / "shuffle-vs-iid.toml"))
SIZES = (16, 32, 64, 128, 4, 2, 1)


def changes(path, sizes) -> tuple[list[float], int]:
    """Seconds per batch-size change (set_batch_size, one step, a frame with the ball's law's curves)."""
    sc = load_scenario(path) if path else find_scenario("default")
    sim = Simulation(apply_overrides(sc, device="cpu"))
    sim.set_sampling("shuffle")
    sim.ball_law_curves = True
    sim.run(2)
    sim.frame(timing=False)
    out = []
    for b in sizes:
        t = time.perf_counter()
        sim.set_batch_size(b)
        sim.run(1)
        sim.frame(timing=False)
        out.append(time.perf_counter() - t)
    opt = sc.optimizer
    return out, BallCache(quad_model(sim.problem)).get(8, opt.lr, opt.momentum, "shuffle").perms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="one scenario, one change, one repeat")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = SIZES[:1] if args.smoke else SIZES
    cases = SCENARIOS[:1] if args.smoke else SCENARIOS
    repeats = 1 if args.smoke else args.repeats
    print(f"{'scenario':16} {'arm':8} {'median s':>9} {'max s':>7}  perms at B = 8")
    for name, path in cases:
        times = {"control": [], "plain": []}
        perms = {}
        for _ in range(repeats):
            for arm in ("plain", "control"):
                epoch_stationary.CONTROL = arm == "control"
                epoch_map._chunks.clear()         # each arm draws its permutations afresh
                t, p = changes(path, sizes)
                times[arm] += t
                perms[arm] = p
        epoch_stationary.CONTROL = True
        for arm in ("plain", "control"):
            print(f"{name:16} {arm:8} {statistics.median(times[arm]):9.3f} {max(times[arm]):7.3f}  {perms[arm]}")
        print(f"{name:16} plain / control: median {statistics.median(times['plain']) / statistics.median(times['control']):.1f}x, "
              f"max {max(times['plain']) / max(times['control']):.1f}x")


if __name__ == "__main__":
    main()
