"""Headless runs: step the simulation and write the metrics CSV (atomically)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import IO

from bsim.atomic import atomic_open
from bsim.errors import BsimInputError
from bsim.frame import csv_columns
from bsim.simulation import Simulation


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, stream: IO | None = None):
        stream = sys.stderr if stream is None else stream
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
    max_chunk = 1000  # steps between progress updates when rows are rarer than that
    writer = csv.writer(fh, lineterminator="\n")
    columns = csv_columns(sim.scenario.chains)
    writer.writerow(columns)
    sim.restart_rate()
    done = 0
    while done < steps:
        chunk = min(every - (sim.step_count % every) if every > 1 else 1, steps - done, max_chunk)
        taken = sim.run(chunk)
        done += taken
        if taken < chunk:
            break
        if sim.step_count % every == 0 or done == steps:
            writer.writerow(sim.frame(timing=timing).csv_row(columns))
        if progress:
            progress.update(done)
    if progress:
        progress.update(done, force=True)
        progress.close()
    return done


def run_headless(sim: Simulation, steps: int, metrics: str | Path | None, every: int = 1,
                 timing: bool = True) -> int:
    """Run and write the CSV to ``metrics`` (stdout when None or "-").

    Exit code: 0 done, 3 diverged, 130 interrupted (Ctrl-C); in both of the
    latter the rows so far are kept. A path that cannot be written is a
    BsimInputError (exit 2).
    """
    progress = Progress(steps)
    try:
        if metrics is None or str(metrics) == "-":
            write_rows(sim, steps, sys.stdout, every, timing, progress)
        else:
            path = Path(metrics)
            _check_writable(path)
            try:
                with atomic_open(path, "w", keep_on_interrupt=True) as fh:
                    write_rows(sim, steps, fh, every, timing, progress)
            except OSError as exc:
                raise BsimInputError(f"{path}: cannot write the metrics: {exc.strerror or exc}; "
                                     f"expected a writable file path") from None
    except KeyboardInterrupt:
        progress.close()
        where = "" if metrics is None or str(metrics) == "-" else f" in {metrics}"
        print(f"bsim: interrupted at step {sim.step_count}; the rows so far are{where or ' written'}",
              file=sys.stderr)
        return 130
    if sim.diverged:
        print(f"bsim: {sim.message}", file=sys.stderr)
        return 3
    return 0


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise BsimInputError(f"{path}: is a folder; expected a file path for the metrics CSV")
    parent = path.parent
    if not parent.is_dir():
        raise BsimInputError(f"{path}: no folder {parent}; expected a path in an existing folder")
