"""Headless runs: step the simulation and stream the metrics CSV as the rows are made.

The metrics file is written in place, in whole lines, and flushed at least
every ``FLUSH_EVERY`` seconds: someone can read it while the run goes, and a
``kill -9`` loses at most that last stretch. SIGINT, SIGTERM and SIGHUP stop
the run between two steps: the row of the step reached is written, and the
exit code is 128 + the signal's number (130, 143, 129). A second signal stops
at once. While a run writes its metrics file it holds an exclusive lock on it
(flock): a second run on the same file refuses.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import IO
from collections.abc import Iterator

from bsim.errors import BsimInputError
from bsim.frame import csv_columns
from bsim.progress import Progress
from bsim.simulation import Simulation

try:
    import fcntl
except ImportError:  # Windows: no lock
    fcntl = None

#: seconds between two writes of the rows made since the last one
FLUSH_EVERY = 0.5
#: the signals that stop a run as Ctrl-C does (exit code 128 + the signal's number)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


# ---------------------------------------------------------------- signals

class StopOnSignals:
    """A context in which SIGINT, SIGTERM and SIGHUP ask the run to stop between steps.

    Owns the process's handlers of those signals while entered (the old ones
    come back on exit; only in the main thread). The first signal sets
    ``signum``; a second one raises KeyboardInterrupt, for a step that hangs.
    """

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + (self.signum or signal.SIGINT)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)   # None: a handler set outside Python
        self._old.clear()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold the stop signals for a moment (a write that must not be cut in two); they arrive after."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# ---------------------------------------------------------------- the file

class MetricsFile:
    """The metrics CSV being written: whole lines, flushed every FLUSH_EVERY seconds, locked.

    Owns the open file and its lock; ``write`` takes whole lines (csv.writer
    writes one row per call), ``flush`` writes them all (the old contents go at
    the first one), ``close`` flushes and unlocks, ``abandon`` unlocks and
    leaves the file as it was (removed if this opened it new).
    """

    def __init__(self, path: Path, fd: int, created: bool = False, regular: bool = True):
        self.path, self.fd = path, fd
        self.created, self.regular = created, regular
        self._started = False
        self._pending: list[str] = []
        self._unwritten = b""
        self._last_flush = time.monotonic()

    @classmethod
    def open(cls, path: str | Path, protect: tuple = ()) -> MetricsFile:
        """Open ``path`` for the rows: refuses a folder, a missing folder, an input of the run, a locked file."""
        path = Path(path)
        _check_writable(path)
        for other, what in protect:
            if other is not None and same_file(path, other):
                raise BsimInputError(f"--metrics {path}: is {what}; expected another path for the metrics CSV "
                                     f"(it would be overwritten)")
        created = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise _write_error(path, exc) from None
        sink = cls(path, fd, created=created, regular=stat.S_ISREG(os.fstat(fd).st_mode))
        if sink.regular and fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                sink.abandon()
                if isinstance(exc, BlockingIOError):
                    raise BsimInputError(f"--metrics {path}: another bsim run is writing it; expected another "
                                         f"path, or wait until that run ends") from None
                raise _write_error(path, exc) from None
        return sink

    def write(self, text: str) -> None:
        self._pending.append(text)
        if time.monotonic() - self._last_flush >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        with _signals_held():
            if self._pending:
                self._unwritten += "".join(self._pending).encode("utf-8")
                self._pending = []
            try:
                if not self._started and self._unwritten:
                    if self.regular:
                        os.ftruncate(self.fd, 0)    # the old rows go only when the new ones come
                    self._started = True
                while self._unwritten:
                    n = os.write(self.fd, self._unwritten)
                    self._unwritten = self._unwritten[n:]
            except OSError as exc:
                raise _write_error(self.path, exc) from None
            self._last_flush = time.monotonic()

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self.fd)    # the lock goes with it
            self.fd = -1

    def abandon(self) -> None:
        """Unlock and leave the file as it was: nothing was written (a new file is removed)."""
        if self.fd < 0:
            return
        if self.created and not self._started:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (the same inode, or the same absolute path when one is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def inputs_of(scenario) -> tuple:
    """(path, what) of the files a run reads: the scenario (or recording) and its data files."""
    found = [(scenario.path, "the scenario being run")]
    for key in ("data", "test_data"):
        rel = getattr(scenario.problem, key, None)
        if rel:
            found.append((scenario.resolve(rel), f"the scenario's {key} file"))
    return tuple(found)


def _write_error(path: Path, exc: OSError) -> BsimInputError:
    return BsimInputError(f"{path}: cannot write the metrics: {exc.strerror or exc}; expected a writable file path")


# ---------------------------------------------------------------- the run

class HeadlessRun:
    """Steps ``sim`` and writes its rows to ``fh``; owns the row cadence and the last row's step.

    A row every ``every`` steps (of ``sim.step_count``), after the last step,
    and, when ``stop`` asks the run to end, at the step reached.
    """

    def __init__(self, sim: Simulation, fh: IO, every: int = 1, timing: bool = True,
                 progress: Progress | None = None, stop: StopOnSignals | None = None):
        self.sim, self.fh, self.every, self.timing = sim, fh, every, timing
        self.progress, self.stop = progress, stop
        self.done = 0
        self.last_row_step: int | None = None    # None: no row yet (the header only)
        self._writer = csv.writer(fh, lineterminator="\n")
        self.columns = csv_columns(sim.scenario.most_chains())   # the chains' columns with an ensemble
        self._flush_at = time.monotonic() + FLUSH_EVERY

    def _row(self) -> None:
        self._writer.writerow(self.sim.frame(timing=self.timing).csv_row(self.columns))
        self.last_row_step = self.sim.step_count
        if not isinstance(self.fh, MetricsFile) and time.monotonic() >= self._flush_at:
            self.fh.flush()       # stdout: a reader of the pipe sees the rows as they come
            self._flush_at = time.monotonic() + FLUSH_EVERY

    def _steps(self, n: int) -> int:
        sim, stop = self.sim, self.stop
        for i in range(n):
            if stop is not None and stop.requested:
                return i
            if not sim.step():
                return i
        return n

    def run(self, steps: int) -> int:
        """Take ``steps`` steps (fewer when the run diverged or was stopped); returns how many."""
        max_chunk = 1000  # steps between progress updates when rows are rarer than that
        sim, every = self.sim, self.every
        self._writer.writerow(self.columns)
        sim.restart_rate()
        row_is_current = True
        while self.done < steps:
            chunk = min(every - (sim.step_count % every) if every > 1 else 1, steps - self.done, max_chunk)
            taken = self._steps(chunk)
            self.done += taken
            row_is_current = row_is_current and taken == 0
            if taken < chunk:
                break
            if sim.step_count % every == 0 or self.done == steps:
                self._row()
                row_is_current = True
            if self.progress:
                self.progress.update(self.done)
        if self.stop is not None and self.stop.requested and not row_is_current and not sim.diverged:
            self._row()           # the step reached: the rows end where the run stopped
        if self.progress:
            self.progress.update(self.done, force=True)
        return self.done


def write_rows(sim: Simulation, steps: int, fh: IO, every: int = 1, timing: bool = True,
               progress: Progress | None = None) -> int:
    """Take ``steps`` steps, writing a CSV row every ``every`` steps and after the last one.

    Returns the number of steps taken (fewer when the run diverged).
    """
    try:
        return HeadlessRun(sim, fh, every, timing, progress).run(steps)
    finally:
        if progress:
            progress.close()


def open_metrics(metrics: str | Path | None, scenario=None) -> MetricsFile | None:
    """The metrics file of a run (None: stdout), checked against the run's own inputs and locked."""
    if metrics is None or str(metrics) == "-":
        return None
    return MetricsFile.open(metrics, protect=inputs_of(scenario) if scenario is not None else ())


def run_headless(sim: Simulation, steps: int, metrics: str | Path | MetricsFile | None, every: int = 1,
                 timing: bool = True, stop: StopOnSignals | None = None) -> int:
    """Run and stream the CSV to ``metrics`` (a path, an open MetricsFile; stdout when None or "-").

    Exit code: 0 done, 3 diverged, 128 + the signal's number when SIGINT
    (130), SIGTERM (143) or SIGHUP (129) stopped it; the rows so far are kept.
    A path that cannot be written, an input of the run, or a file another run
    is writing is a BsimInputError (exit 2). ``stop``: the caller's own
    StopOnSignals (it then also covers what the caller does after the run).
    """
    sink = metrics if isinstance(metrics, MetricsFile) else open_metrics(metrics, sim.scenario)
    where = "" if sink is None else f" in {sink.path}"
    progress = Progress(steps)
    run = HeadlessRun(sim, sys.stdout if sink is None else sink, every, timing, progress, stop)
    stopped = drive(run, lambda: run.run(steps), sink, progress, lambda: _say_interrupted(run, where))
    if stopped is not None:
        return stopped
    if sim.diverged:
        print(f"bsim: {sim.message}", file=sys.stderr)
        return 3
    return 0


def drive(rows, run, sink: MetricsFile | None, progress: Progress, say_interrupted) -> int | None:
    """Call ``run()`` under the signals, then close the progress bar and the rows' file whatever happened.

    ``rows``: what writes the rows (its ``stop`` is the caller's StopOnSignals, or one made here).
    Returns the exit code of a stop (128 + the signal's number; 130 for a KeyboardInterrupt), after
    ``say_interrupted()``; None when the run went to its end.
    """
    stop = rows.stop
    try:
        with contextlib.ExitStack() as stack:
            if stop is None:
                stop = rows.stop = stack.enter_context(StopOnSignals())
            try:
                run()
            finally:
                progress.close()
                if sink is not None:
                    sink.close()
                else:
                    sys.stdout.flush()
    except KeyboardInterrupt:
        say_interrupted()
        return stop.exit_code if stop.requested else 130
    if stop.requested:
        say_interrupted()
        return stop.exit_code
    return None


def _say_interrupted(run: HeadlessRun, where: str) -> None:
    """One line whose step is the last row's: the message and the file agree."""
    at = "before the first row" if run.last_row_step is None else f"at step {run.last_row_step} (the last row)"
    with contextlib.suppress(OSError):      # SIGHUP: the terminal may be gone
        print(f"bsim: interrupted {at}; the rows so far are{where or ' written'}", file=sys.stderr)


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise BsimInputError(f"{path}: is a folder; expected a file path for the metrics CSV")
    parent = path.parent
    if not parent.is_dir():
        raise BsimInputError(f"{path}: no folder {parent}; expected a path in an existing folder")
