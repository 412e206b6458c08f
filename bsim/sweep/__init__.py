"""Batch-size sweeps: steps and examples to a target loss against B, and the critical batch size.

The experiment of Shallue et al. (2018) and McCandlish et al. (2018): train
the same scenario at many batch sizes (and seeds) to a fixed target, record
steps S and examples E, and fit (S/S_min - 1)(E/E_min - 1) = 1, which gives
B_crit = E_min / S_min, set beside the measured noise scale B_simple.

spec (what a sweep is) -> task (one run) -> runner (inline, pool, Ray; the CSV
is the state) -> analysis and fit -> plots (terminal) and the app's screen.
"""

from __future__ import annotations

from pathlib import Path


def load_sweep(path: str | Path):
    """(Summary, curves) of a saved sweep; curves: batch size -> the curve of its kept lr and first seed."""
    from bsim.errors import BsimInputError
    from bsim.sweep import state
    from bsim.sweep.analysis import summarize
    from bsim.sweep.spec import Task
    rows, _dropped = state.drop_duplicates(state.read_rows(path))   # a task counted once (bsim sweep warns on resume)
    if not rows:
        raise BsimInputError(f"{path}: holds no finished task yet; expected a sweep with at least one row")
    summary = summarize(rows)
    folder = state.curves_dir(path)
    curves = {}
    for pb in summary.per_b:
        seeds = sorted(r["seed"] for r in rows if r["batch_size"] == pb.batch_size and r["lr"] == pb.lr)
        c = state.read_curve(folder, Task(pb.batch_size, seeds[0], pb.lr).name)
        if c:
            curves[pb.batch_size] = c
    return summary, curves
