"""Sweep engines: batched runs against one task at a time (in-process and a pool of 2), on the bundled sweep.

The sweep: sweep-linreg with its own defaults (least squares, 32 features, B = 1..1024, 9 lrs, 3 seeds,
to within 0.1 of the optimum's loss: 297 tasks of very different lengths). Arms:
- batched: each batch size's 27 tasks as one batched run in this process (bsim.sweep.batched, the
  default for linear problems), and the same batched runs spread over a pool of 2 (``--workers 2``);
- pool, 2 workers: one task at a time on a spawned pool of 2 (the engine before batched runs, and
  still the LSTM's);
- with ``--inline``, in-process one task at a time; with ``--ray``, Ray with 2 CPUs (warm cluster), one
  task at a time.
Printed as ratios measured in this one run, with the CPU time of the sweep's processes (this one and
its pool's workers), which a shared machine's load moves less than the wall clock. The rows must agree: the steps to the target, samples,
stop and steps run identically (or within ``check_every`` = 1 step where the arithmetic differs), the
losses and noise scales to 1e-9 relative (the batched run's bmm against the single run's products).

Each arm runs ``--repeats`` times (alternating) and keeps its fastest run, since the 2-core machine
is shared: a busy neighbour slows one run, not the minimum.

    python bench/sweep.py [--repeats R] [--ray] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.scenario import find_scenario  # noqa: E402
from bsim.sweep.engines import Progress, run_sweep  # noqa: E402
from bsim.sweep.spec import SweepSpec  # noqa: E402

EXACT = ("reached", "diverged", "stop", "steps", "samples", "steps_run")
CLOSE = ("train_loss", "test_loss", "b_simple", "b_noise", "train_acc", "test_acc")


def make_spec(smoke: bool = False) -> SweepSpec:
    sc = find_scenario("sweep-linreg")
    d = sc.sweep
    if smoke:   # a few tasks: every arm runs and their rows are compared
        return SweepSpec(scenario=sc, scenario_name="sweep-linreg", batch_sizes=(8, 64), target=0.1, excess=True,
                         seeds=(0,), lr_rule="tuned", lr_grid=(0.125, 0.5), max_steps=2000)
    return SweepSpec(scenario=sc, scenario_name="sweep-linreg", batch_sizes=tuple(d["batch_sizes"]), target=0.1,
                     excess=True, seeds=tuple(range(d["seeds"])), lr_rule="tuned", lr_grid=tuple(d["lr_grid"]),
                     max_steps=d["max_steps"])


def cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (the pool's workers, once shut down)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(spec, folder: Path, name: str, **kw) -> tuple[float, float, list[dict]]:
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = run_sweep(spec, folder / f"{name}.csv", progress=Progress(1, enabled=False), quiet=True, **kw)
    return time.perf_counter() - t0, cpu_seconds() - c0, out.rows


def compare(a: list[dict], b: list[dict]) -> tuple[int, int, int, float]:
    """Between two arms' rows: (tasks whose stop, steps to target or samples differ, the largest difference
    in steps, the largest difference in steps_run of a diverged task, the largest relative difference of the losses and
    noise scales)."""
    key = lambda r: (r["batch_size"], r["seed"], r["lr"])     # noqa: E731
    other = {key(r): r for r in b}
    differ, most, diverged, rel = 0, 0, 0, 0.0
    for r in a:
        s = other[key(r)]
        if any(r[k] != s[k] for k in EXACT if k != "steps_run"):
            differ += 1
            if r["steps"] is not None and s["steps"] is not None:
                most = max(most, abs(r["steps"] - s["steps"]))
        elif r["diverged"] and r["steps_run"] != s["steps_run"]:
            diverged = max(diverged, abs(r["steps_run"] - s["steps_run"]))
        for k in CLOSE:
            x, y = r.get(k), s.get(k)
            if x is not None and y is not None and math.isfinite(y) and y != 0 and not r["diverged"]:
                rel = max(rel, abs(x - y) / abs(y))
    return differ, most, diverged, rel


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--inline", action="store_true", help="also in-process, one task at a time")
    ap.add_argument("--ray", action="store_true", help="also Ray with 2 CPUs (a warm local cluster)")
    ap.add_argument("--smoke", action="store_true",
                    help="CI: 4 tasks, 1 repeat, no batched pool (one pool's start-up); rows still compared")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.ray = 1, False
    import torch
    torch.set_num_threads(1)
    spec = make_spec(smoke=args.smoke)
    n = len(spec.tasks())
    print(f"sweep: {n} tasks (sweep-linreg, B = {spec.batch_sizes[0]}..{spec.batch_sizes[-1]}, "
          f"{len(spec.lrs_for(1))} lrs, {len(spec.seeds)} seed(s)), {os.cpu_count()} cores")
    times: dict[str, float] = {}
    cpus: dict[str, float] = {}
    rows: dict[str, list] = {}

    def keep(name, t, c, r):
        if t < times.get(name, float("inf")):
            times[name], cpus[name] = t, c
        rows[name] = r

    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            d = Path(tmp) / str(rep)
            d.mkdir()
            keep("batched, in-process", *timed(spec, d, "batched"))
            if not args.smoke:      # one pool's start-up is enough for CI
                keep("batched, pool of 2", *timed(spec, d, "batched2", workers=2, in_process=False))
            keep("pool, 2 workers, one by one", *timed(spec, d, "pool2", workers=2, batched=False, in_process=False))
            if args.inline:
                keep("in-process, one by one", *timed(spec, d, "inline", workers=1, batched=False))
            if args.ray:
                import ray
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                timed(spec, d, "ray-warmup", use_ray=True, batched=False)
                keep("ray (warm), one by one", *timed(spec, d, "ray", use_ray=True, batched=False))
                ray.shutdown()
    print(f"{'arm':<30} {'seconds':>8} {'CPU s':>8}  (fastest of {args.repeats}; CPU: this process and its workers; "
          f"load average {os.getloadavg()[0]:.1f})")
    for k, v in times.items():
        print(f"{k:<30} {v:8.2f} {cpus[k]:8.2f}")
    ref = rows["pool, 2 workers, one by one"]
    ok = True
    for name, r in rows.items():
        if name == "pool, 2 workers, one by one":
            continue
        differ, most, diverged, rel = compare(r, ref)
        print(f"{name} against the pool's rows (one by one): stop, steps to target or samples differ in {differ} "
              f"of {len(ref)} tasks (steps by at most {most}); diverged tasks stopped at most {diverged} step(s) apart; "
              f"losses and noise scales within {rel:.1e} relative")
        ok = ok and most <= 1 and rel <= 1e-9      # a diverged task's steps_run: reported (see batched.py)
    t, p2 = times["batched, in-process"], times["pool, 2 workers, one by one"]
    print(f"batched in-process, speed-up over the pool of 2 (one by one):  {p2 / t:.1f}x")
    if "batched, pool of 2" in times:
        print(f"batched on a pool of 2, speed-up over the pool of 2 (one by one): {p2 / times['batched, pool of 2']:.1f}x")
    c = cpus["batched, in-process"]
    print(f"CPU time, the pool of 2 (one by one) over batched in-process:  {cpus['pool, 2 workers, one by one'] / c:.1f}x")
    if "in-process, one by one" in times:
        print(f"batched speed-up over one by one in-process:          {times['in-process, one by one'] / t:.1f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
