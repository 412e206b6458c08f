"""A headless race: one metrics CSV in long form, a ``lane`` column (the lane's batch size, or the name of a lane
that differs by schedule) then the run's columns.

Each lane writes a row every ``every`` of its own steps and at its last step, as ``bsim run --headless
--every K`` does at that batch size: a lane's rows equal the single run's rows, cell for cell (with
``--no-timing``; with timing, samples_per_sec is the lane's own rate: its samples / the seconds its
steps took). Rows come in the order the lanes take their steps (the lockstep's order).

As ``bsim.headless``: streamed in whole lines, flushed at least every FLUSH_EVERY s, locked;
SIGINT, SIGTERM and SIGHUP stop the race between two steps, each lane then writes the row of the step
it reached, and the exit code is 128 + the signal's number. A diverged lane writes no row for the step
that failed (as a single run), the others go on; the exit code is then 3 (a lane's rows are cut short).
"""

from __future__ import annotations

import contextlib
import csv
import sys
import time
from typing import IO

from bsim.frame import csv_columns
from bsim.headless import FLUSH_EVERY, MetricsFile, StopOnSignals, drive, open_metrics
from bsim.progress import Progress
from bsim.race.race import Race

#: lane steps between two updates of the progress bar
PROGRESS_EVERY = 64


class RaceRows:
    """Steps a race to its lanes' ends and writes their rows to ``fh``; owns each lane's last row step."""

    def __init__(self, race: Race, fh: IO, every: int = 1, timing: bool = True,
                 progress: Progress | None = None, stop: StopOnSignals | None = None):
        self.race, self.fh, self.every, self.timing = race, fh, every, timing
        self.progress, self.stop = progress, stop
        self.columns = ("lane",) + csv_columns(race.chains)
        self.last_row: dict[int, int] = {}      # id(lane) -> step of its last row
        self._writer = csv.writer(fh, lineterminator="\n")
        self._flush_at = time.monotonic() + FLUSH_EVERY

    def _row(self, lane) -> None:
        frame = lane.frame(self.timing).frame
        self._writer.writerow([str(lane.key)] + frame.csv_row(self.columns[1:]))
        self.last_row[id(lane)] = lane.steps
        if not isinstance(self.fh, MetricsFile) and time.monotonic() >= self._flush_at:
            self.fh.flush()
            self._flush_at = time.monotonic() + FLUSH_EVERY

    def run(self) -> None:
        race, every = self.race, self.every
        self._writer.writerow(self.columns)
        n = 0
        while not (self.stop is not None and self.stop.requested) and race.step():
            lane = race.last_lane
            if not lane.diverged and (lane.steps % every == 0 or lane.finished):
                self._row(lane)
            n += 1
            if self.progress and n % PROGRESS_EVERY == 0:
                self.progress.update(progress_done(race))
        if self.stop is not None and self.stop.requested:
            for lane in race.lanes:     # the step each lane reached: its rows end where it stopped
                if lane.steps and not lane.diverged and self.last_row.get(id(lane)) != lane.steps:
                    self._row(lane)
        if self.progress:
            self.progress.update(progress_done(race), force=True)


def progress_total(race: Race) -> tuple[int, str]:
    """(the sum of the lanes' ends, the unit): steps when every end counts steps, else samples."""
    unit = "steps" if all(lane.limit[0] == "steps" for lane in race.lanes) else "samples"
    return sum(_end(lane, unit) for lane in race.lanes), unit


def _end(lane, unit: str) -> int:
    axis, n = lane.limit
    return n if axis == unit else n * lane.batch_size     # steps -> samples, near enough for a bar


def progress_done(race: Race) -> int:
    _, unit = progress_total(race)
    return sum(min(lane.steps if unit == "steps" else lane.samples, _end(lane, unit)) for lane in race.lanes)


def run_race_headless(race: Race, metrics, every: int = 1, timing: bool = True,
                      stop: StopOnSignals | None = None) -> int:
    """Run every lane to its end, streaming the CSV to ``metrics`` (a path, a MetricsFile, or stdout: None, "-").

    Exit code: 0 done, 3 a lane diverged (its rows end before the failing step, the others ran to
    their end), 128 + the signal's number when a signal stopped it (the rows so far are kept).
    """
    sink = metrics if isinstance(metrics, MetricsFile) else open_metrics(metrics, race.scenario)
    where = "" if sink is None else f" in {sink.path}"
    total, unit = progress_total(race)
    progress = Progress(total, unit=unit)
    rows = RaceRows(race, sys.stdout if sink is None else sink, every, timing, progress, stop)
    stopped = drive(rows, rows.run, sink, progress, lambda: _say_interrupted(race, where))
    if stopped is not None:
        return stopped
    for text in race.take_notices():
        print(f"bsim: {text}", file=sys.stderr)
    return 3 if any(lane.diverged for lane in race.lanes) else 0


def _say_interrupted(race: Race, where: str) -> None:
    at = ", ".join(f"{lane.label} at step {lane.steps}" for lane in race.lanes)
    with contextlib.suppress(OSError):
        print(f"bsim: interrupted ({at}); the rows so far are{where or ' written'}", file=sys.stderr)
