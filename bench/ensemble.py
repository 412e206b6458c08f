"""Ensemble speed: chain-steps per second of K chains in one run against K separate runs.

For each problem (least squares d = 2 B = 8, logistic regression, the LSTM:
the bundled scenarios default, logreg, lstm) and each K, two arms, both
without the noise statistics (``stats=False``: the SGD engine alone):
- ensemble: one Simulation with ``chains = K`` (chain 0 the run, chains
  1..K-1 one batched step after it), K chain-steps per step;
- separate: K separate Simulations (chains = 1) stepped one after another,
  timed on fewer steps (at least ~1 s of work) and scaled to a rate.
The arms alternate ``--repeats`` times (a busy machine slows both alike); the
table shows the median rate of each and their ratio (ensemble / separate,
higher is better), measured in this run.
Goals: >= 50x at K = 256 for least squares, >= 5x at K = 64 for the LSTM.
The LSTM's chains run on the C kernel where it builds (``bsim.ensemble.native``;
the line above the table says which), else on the torch code; ``BSIM_NATIVE=0``
measures the torch code.

    python bench/ensemble.py [--smoke] [--device cpu|cuda] [--chains 1,64,256,1024] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.ensemble import native
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation

CASES = [  # name, bundled scenario, batch size, goal (K, ratio)
    ("linreg d=2 B=8", "default", 8, (256, 50.0)),
    ("logreg d=2 B=8", "logreg", 8, None),
    ("lstm h=16 T=16 B=32", "lstm", 32, (64, 5.0)),
]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make(scenario: str, batch_size: int, device: str, chains: int) -> Simulation:
    sc = apply_overrides(find_scenario(scenario), batch_size=batch_size, device=device, chains=chains)
    return Simulation(sc, stats=False)


def rate(step, work_per_call: int, device: str, seconds: float, min_calls: int = 2) -> float:
    """Work units per second of ``step()``: two warm-up calls, then calls until ``seconds`` have passed."""
    for _ in range(2):
        step()
    sync(device)
    calls, t0 = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        if calls >= min_calls:
            sync(device)
            dt = time.perf_counter() - t0
            if dt >= seconds:
                return calls * work_per_call / dt


def ensemble_step(scenario, batch_size, device, chains):
    """One step of one run with ``chains`` chains: ``chains`` chain-steps per call."""
    sim = make(scenario, batch_size, device, chains)

    def step():
        if not sim.step():
            raise RuntimeError(f"the run diverged: {sim.message}")
    return step


def separate_step(scenario, batch_size, device, chains):
    """K separate Simulations, one step each in turn: ``chains`` chain-steps per call."""
    sims = [make(scenario, batch_size, device, 1) for _ in range(chains)]

    def step():
        for sim in sims:
            sim.step()
    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a few seconds: K = 1 and 64, short timings")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--chains", help="comma-separated K (default 1,64,256,1024; on cuda up to 16384)")
    ap.add_argument("--seconds", type=float, help="timed seconds per arm (default 1.0; --smoke 0.1)")
    ap.add_argument("--cases", help="comma-separated subset: linreg,logreg,lstm")
    ap.add_argument("--repeats", type=int, help="the two arms alternate this many times; medians (default 3; --smoke 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.chains:
        ks = [int(k) for k in args.chains.split(",")]
    elif args.smoke:
        ks = [1, 64]
    else:
        ks = [1, 64, 256, 1024] + ([4096, 16384] if args.device == "cuda" else [])
    seconds = args.seconds if args.seconds is not None else (0.1 if args.smoke else 1.0)
    repeats = args.repeats or (1 if args.smoke else 3)
    cases = [c for c in CASES if not args.cases or c[1].replace("default", "linreg") in args.cases.split(",")]
    print(f"device {args.device}, torch {torch.__version__}, 1 thread; chain-steps/s (ensemble | K separate runs)")
    if any(c[1] == "lstm" for c in cases):
        probe = make("lstm", 32, args.device, 2)
        print(f"LSTM chains computed by: {native.engine_name(probe.problem, probe.ensemble.theta)}")
    print(f"{'case':<22} {'K':>6} {'ensemble':>12} {'separate':>12} {'ratio':>8}  goal")
    failed = False
    for name, scenario, batch_size, goal in cases:
        for k in ks:
            ens_step = ensemble_step(scenario, batch_size, args.device, k)
            sep_step = separate_step(scenario, batch_size, args.device, k)
            ens_rates, sep_rates = [], []
            for _ in range(repeats):   # alternating, so that a busy machine slows both arms alike
                ens_rates.append(rate(ens_step, k, args.device, seconds))
                sep_rates.append(rate(sep_step, k, args.device, seconds, min_calls=1))
            ens, sep = statistics.median(ens_rates), statistics.median(sep_rates)
            del ens_step, sep_step
            ratio = ens / sep
            mark = ""
            if goal and goal[0] == k:
                ok = ratio >= goal[1]
                failed |= not ok
                mark = f">= {goal[1]:g}x {'met' if ok else 'NOT met'}"
            print(f"{name:<22} {k:>6} {ens:>12,.0f} {sep:>12,.0f} {ratio:>7.1f}x  {mark}", flush=True)
    return 1 if failed and not args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
