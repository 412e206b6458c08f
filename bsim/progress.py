"""One progress bar for long commands (headless runs, sweeps), on rich.progress.

It draws on stderr, and only when stderr is a terminal, so that a CSV on
stdout or a log file never holds it. The rate is (done - done at start) /
elapsed, and the remaining time (total - done) / rate: what was found done
already (a resumed sweep) does not count as speed.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import IO
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

#: seconds between two redraws (an update in between only stores the count)
REDRAW_EVERY = 0.2


class Progress:
    """A one-line bar with the count, the rate, the elapsed and remaining time and a last note.

    Owns a rich.progress display on ``stream`` (stderr by default); touches
    nothing else. ``enabled`` defaults to whether ``stream`` is a terminal.
    ``clock`` is rich's ``get_time`` (tests pass a fake one).
    """

    def __init__(self, total: int, done: int = 0, unit: str = "steps", stream: IO | None = None,
                 enabled: bool | None = None, clock: Callable[[], float] | None = None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.unit = total, done, unit
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self._clock = clock or time.monotonic
        self.start_done, self.t0 = done, self._clock()
        self._bar: RichProgress | None = None
        self._last_draw = float("-inf")

    def _start(self) -> None:
        console = Console(file=self.stream, force_terminal=True, highlight=False)
        self._bar = RichProgress(
            BarColumn(bar_width=30), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[last]}"),
            console=console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False,
            get_time=self._clock,
        )
        self._task = self._bar.add_task("", total=self.total, completed=self.done, unit=self.unit, last="",
                                        **self.fields())
        self._bar.start()

    def fields(self) -> dict:
        """The rate (units/s) and the remaining time (s) as shown: "?" before anything ran."""
        ran, left = self.done - self.start_done, self.total - self.done
        dt = self._clock() - self.t0
        if ran <= 0 or dt <= 0:
            return {"rate": f"? {self.unit}/s", "eta": "?"}
        rate = ran / dt
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
        return {"rate": f"{shown} {self.unit}/s", "eta": f"{left / rate:.0f}s"}

    def update(self, done: int, last: str = "", force: bool = False) -> None:
        """Set the count (and the note after the bar); redraws at most every REDRAW_EVERY seconds."""
        self.done = done
        if not self.enabled:
            return
        if self._bar is None:
            self._start()
        self._bar.update(self._task, completed=done, last=last, **self.fields())
        now = time.perf_counter()
        if force or now - self._last_draw >= REDRAW_EVERY:
            self._last_draw = now
            self._bar.refresh()

    def close(self) -> None:
        """Draw the last count and end the line (the cursor is shown again)."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            with contextlib.suppress(OSError):     # a terminal gone (SIGHUP): nothing to draw on
                bar.refresh()
                bar.stop()


def _isatty(stream: IO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):   # a closed or odd stream: no bar
        return False


__all__ = ["Progress"]
