"""Landscape ensemble speed: chain-steps per second of K chains on the tilted wells against one chain.

Two arms on the bundled `escape` landscape (1-D tilted wells, B = 4, with replacement) and on
`escape-2d`, both without the noise statistics (``stats=False``: the SGD engine and the escape
meter, which counts basins and escapes every step):
- one chain: a Simulation with chains = 1, one chain-step per step;
- ensemble: a Simulation with chains = K (chain 0 the run, chains 1..K-1 one batched step
  after it), K chain-steps per step.
The arms alternate ``--repeats`` times (a busy machine slows both alike); the table shows the
median rate of each and their ratio (ensemble / one chain), measured in this run.
Goal: >= 100x at K = 1024.

    python bench/landscape.py [--smoke] [--device cpu|cuda] [--chains 1024] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation

GOAL = (1024, 100.0)
CASES = (("wells 1-D B=4", "escape"), ("wells2d 2-D B=4", "escape-2d"))


def make(scenario: str, device: str, chains: int) -> Simulation:
    sc = apply_overrides(find_scenario(scenario), batch_size=4, device=device, chains=chains)
    sc.timeline = []     # no batch-size change mid-measurement
    return Simulation(sc, stats=False)


def rate(sim: Simulation, chains: int, device: str, seconds: float) -> float:
    """Chain-steps per second: two warm-up steps, then steps until ``seconds`` have passed."""
    for _ in range(2):
        sim.step()
    if device == "cuda":
        torch.cuda.synchronize()
    steps, t0 = 0, time.perf_counter()
    while True:
        for _ in range(10):
            sim.step()
        steps += 10
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return steps * chains / dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a few seconds: short timings, one repeat")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chains", type=int, default=GOAL[0])
    ap.add_argument("--seconds", type=float, help="timed seconds per arm (default 1.0; --smoke 0.1)")
    ap.add_argument("--repeats", type=int, help="the arms alternate this many times; medians (default 3; --smoke 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seconds = args.seconds if args.seconds is not None else (0.1 if args.smoke else 1.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.smoke else 3)
    K = args.chains
    print(f"landscape ensemble on {args.device}, K = {K}, {repeats} repeat(s) of {seconds:g} s per arm "
          f"(chain-steps/s, medians)")
    print(f"{'problem':<18} {'one chain':>12} {'K chains':>14} {'ratio':>8}")
    ok = True
    for name, scenario in CASES:
        one, many = [], []
        single, ensemble = make(scenario, args.device, 1), make(scenario, args.device, K)
        for _ in range(repeats):
            one.append(rate(single, 1, args.device, seconds))
            many.append(rate(ensemble, K, args.device, seconds))
        r1, rk = statistics.median(one), statistics.median(many)
        ratio = rk / r1
        goal = K == GOAL[0]
        ok &= ratio >= GOAL[1] or not goal
        print(f"{name:<18} {r1:>12,.0f} {rk:>14,.0f} {ratio:>7.0f}x" + (f"  (goal >= {GOAL[1]:.0f}x)" if goal else ""))
    if args.smoke:
        print("smoke run: every arm ran; the speed goal is judged only in a full run")
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
