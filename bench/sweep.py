"""Sweep engines: the local pool with 1 and 2 workers, and Ray against the pool, on one small sweep.

The sweep: the sweep-linreg scenario (least squares, 32 features), batch sizes
1..1024, lr tuned over 6 values, 3 seeds, to within 0.1 of the optimum's
loss: 198 tasks of very different lengths. Every arm runs the same tasks and
writes its own CSV; the rows must agree (wall_s aside), which is checked.

Arms: in-process (workers = 1), a spawned process pool of 1 and of 2 workers,
and Ray with 2 CPUs, timed twice: from ``ray.init`` (a cold local cluster)
and on the cluster already started (warm). Printed as ratios measured in this
one run: the pool's speed-up from 1 to 2 workers, the cost of the pool's
process start-up against in-process, and Ray's time over the 2-worker pool's.

Each arm runs ``--repeats`` times (alternating) and keeps its fastest run, since
the 2-core machine is shared: a busy neighbour slows one run, not the minimum.

    python bench/sweep.py [--seeds K] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.scenario import find_scenario  # noqa: E402
from bsim.sweep.engines import Progress, run_sweep  # noqa: E402
from bsim.sweep.spec import SweepSpec  # noqa: E402


def make_spec(seeds: int, smoke: bool = False) -> SweepSpec:
    if smoke:   # a few tasks: every engine runs and their rows are compared
        return SweepSpec(scenario=find_scenario("sweep-linreg"), scenario_name="sweep-linreg",
                         batch_sizes=(8, 64), target=0.1, excess=True, seeds=(0,), lr_rule="tuned",
                         lr_grid=(0.125, 0.5), max_steps=2000)
    return SweepSpec(scenario=find_scenario("sweep-linreg"), scenario_name="sweep-linreg",
                     batch_sizes=tuple(2 ** k for k in range(11)), target=0.1, excess=True,
                     seeds=tuple(range(seeds)), lr_rule="tuned", lr_grid=(0.03125, 0.0625, 0.125, 0.25, 0.5, 1.5), max_steps=20000)


def timed(spec, folder: Path, name: str, **kw) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    out = run_sweep(spec, folder / f"{name}.csv", progress=Progress(1, enabled=False), quiet=True, **kw)
    return time.perf_counter() - t0, out.rows


def rows_key(rows):
    return sorted(tuple((k, v) for k, v in r.items() if k != "wall_s") for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--smoke", action="store_true",
                    help="CI: 4 tasks, 1 repeat, no Ray (its start-up alone takes longer); rows still compared")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    import torch
    torch.set_num_threads(1)
    spec = make_spec(args.seeds, smoke=args.smoke)
    n = len(spec.tasks())
    print(f"sweep: {n} tasks (sweep-linreg, B = 1..1024, 6 lrs, {args.seeds} seed(s)), {os.cpu_count()} cores")
    try:
        import ray
    except ImportError:
        ray = None
    if args.smoke:
        ray = None
    times: dict[str, float] = {}
    rows: dict[str, list] = {}

    def keep(name, t, r):
        times[name] = min(times.get(name, float("inf")), t)
        rows[name] = r

    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            d = Path(tmp) / str(rep)
            d.mkdir()
            keep("in-process", *timed(spec, d, "inline", workers=1))
            keep("pool, 1 worker", *timed(spec, d, "pool1", workers=1, in_process=False))
            keep("pool, 2 workers", *timed(spec, d, "pool2", workers=2, in_process=False))
            if ray is not None:
                t0 = time.perf_counter()
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                t_init = time.perf_counter() - t0
                t_run, r = timed(spec, d, "ray1", use_ray=True)
                keep("ray, cold (with ray.init)", t_init + t_run, r)
                keep("ray, warm cluster", *timed(spec, d, "ray2", use_ray=True))
                ray.shutdown()
    ref = rows_key(rows["in-process"])
    same = all(rows_key(r) == ref for r in rows.values())
    print(f"{'arm':<28} {'seconds':>8}  (fastest of {args.repeats})")
    for k, v in times.items():
        print(f"{k:<28} {v:8.2f}")
    print(f"rows identical in every arm (wall_s aside): {'yes' if same else 'NO'}")
    print(f"pool speed-up, 2 workers over 1:          {times['pool, 1 worker'] / times['pool, 2 workers']:.2f}x")
    print(f"pool of 1 over in-process (start-up):     {times['pool, 1 worker'] / times['in-process']:.2f}x")
    if "ray, warm cluster" in times:
        p2 = times["pool, 2 workers"]
        print(f"ray over the 2-worker pool, cold:         {times['ray, cold (with ray.init)'] / p2:.2f}x")
        print(f"ray over the 2-worker pool, warm:         {times['ray, warm cluster'] / p2:.2f}x")
    else:
        print("ray: skipped in --smoke (its start-up alone takes longer)" if args.smoke
              else "ray: not installed (pip install 'bsim[ray]')")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
