"""Headless runs: step the simulation and write the metrics CSV (atomically)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import IO

from bsim.atomic import atomic_open
from bsim.frame import CSV_COLUMNS
from bsim.simulation import Simulation


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, stream: IO = sys.stderr):
        self.total, self.stream = total, stream
        self.enabled = stream.isatty()
        self.t0 = self.last = time.perf_counter()

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and not force):
            return
        self.last = now
        frac = done / self.total if self.total else 1.0
        rate = done / (now - self.t0) if now > self.t0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r[{bar:<30}] {done}/{self.total} steps  {rate:,.0f} steps/s  ETA {eta:4.0f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def write_rows(sim: Simulation, steps: int, fh: IO, every: int = 1, timing: bool = True,
               progress: Progress | None = None) -> int:
    """Take ``steps`` steps, writing a CSV row every ``every`` steps and after the last one.

    Returns the number of steps taken (fewer when the run diverged).
    """
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sim.frame(timing=timing)  # starts the rate meter
    done = 0
    while done < steps:
        chunk = min(every - (sim.step_count % every) if every > 1 else 1, steps - done)
        taken = sim.run(chunk)
        done += taken
        if taken < chunk:
            break
        if sim.step_count % every == 0 or done == steps:
            writer.writerow(sim.frame(timing=timing).csv_row())
        if progress:
            progress.update(done)
    if progress:
        progress.update(done, force=True)
        progress.close()
    return done


def run_headless(sim: Simulation, steps: int, metrics: str | Path | None, every: int = 1,
                 timing: bool = True) -> int:
    """Run and write the CSV to ``metrics`` (stdout when None). Exit code: 0, or 3 if diverged."""
    progress = Progress(steps)
    if metrics is None or str(metrics) == "-":
        write_rows(sim, steps, sys.stdout, every, timing, progress)
    else:
        try:
            with atomic_open(Path(metrics), "w", keep_on_interrupt=True) as fh:
                write_rows(sim, steps, fh, every, timing, progress)
        except KeyboardInterrupt:
            progress.close()
            print(f"bsim: interrupted at step {sim.step_count}; the rows so far are in {metrics}", file=sys.stderr)
            return 130
    for w in sim.scenario.warnings:
        print(f"bsim: warning: {w}", file=sys.stderr)
    if sim.diverged:
        print(f"bsim: {sim.message}", file=sys.stderr)
        return 3
    return 0
