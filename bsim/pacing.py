"""The pace of a worker thread that steps something and publishes frames: what Runner and RaceRunner share.

A view sends items with ``submit`` (thread-safe; without a thread they are handled at once). The
thread steps as fast as allowed (``speed``: a cap of steps per second, None for none), publishes a
frame at most ``fps`` times a second and right after a change (``_dirty``), and a costly frame is read
at most about 1/5 of the time. While a screen draws the answer to a key it sets ``ui_busy`` and the
thread sleeps (the GIL released) until the screen is done, an item comes, or ``max_yield`` s.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from bsim.controls import Faster, next_speed, speed_text


def one_line(exc: Exception) -> str:
    """An exception as one line of at most 300 characters (its type's name if it says nothing)."""
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


class Pacer:
    """Owns the thread, its queue of items, the pause flag, the speed cap and the publishing rhythm.

    A subclass owns what is stepped and says how: ``_can_step`` (False: wait, e.g. paused or diverged),
    ``_one_step`` (False: no step was taken), ``_read_frame`` (the frame of what is stepped, now),
    ``state`` (the RunnerState a frame carries) and ``_handle`` (one item). May touch: only its own
    state and the two callbacks.
    """

    #: the thread's name, and how an unexpected error is reported ("<stopped_text>: TypeError: ...")
    thread_name = "bsim-runner"
    stopped_text = "the simulation stopped"
    #: said after a speed change, e.g. " (lane steps, all lanes together)"
    speed_unit = ""

    def __init__(self, *, on_frame: Callable | None = None, on_event: Callable[[str, str], None] | None = None,
                 fps: float = 20.0, paused: bool = False, speed: int | None = None, threaded: bool = True):
        self.on_frame = on_frame or (lambda f: None)
        self.on_event = on_event or (lambda kind, text: None)
        self.fps, self.paused, self.speed, self.threaded = fps, paused, speed, threaded
        #: set by a screen while it draws the frame that answers a key: the thread then leaves the
        #: GIL to it (up to ``max_yield`` s), so the key's effect is not drawn behind training steps
        self.ui_busy = threading.Event()
        self.max_yield = 0.05
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty = True
        self._next_step_at = time.perf_counter()

    # ------------------------------------------------------------ what a subclass says
    def _can_step(self) -> bool:
        return not self.paused

    def _one_step(self) -> bool:
        raise NotImplementedError

    def _read_frame(self):
        raise NotImplementedError

    def state(self):
        raise NotImplementedError

    def _handle(self, item) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        """Read a frame, attach the runner's state, keep it as ``latest`` and give it to ``on_frame``
        (a frame that cannot be read is one line on ``on_event``)."""
        self._dirty = False
        try:
            frame = self._read_frame()
        except Exception as exc:  # noqa: BLE001
            self.on_event("error", f"cannot read the metrics: {one_line(exc)}")
            return
        frame.runner = self.state()
        self.latest = frame
        self.on_frame(frame)

    # ------------------------------------------------------------ public API
    def submit(self, item) -> None:
        """Queue an item (thread-safe); without a thread it is handled now."""
        if self.threaded and self._thread is not None:
            self._q.put(item)
        else:
            self._handle(item)
            if self._dirty:
                self._publish()

    def start(self) -> None:
        if not self.threaded:
            self._publish()
            return
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def _stop_thread(self, timeout: float) -> None:
        self._stop.set()
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def advance(self, n: int = 1) -> int:
        """Synchronously: handle queued items, take up to n steps, publish a frame; returns the steps taken."""
        self._drain()
        taken = 0
        while taken < n and self._one_step():
            taken += 1
        self._publish()
        return taken

    # ------------------------------------------------------------ the thread
    def _loop(self) -> None:
        """Step as fast as allowed; publish a frame every 1/fps s and right after the step following a change."""
        period = 1.0 / self.fps
        next_pub = time.perf_counter()
        try:
            while not self._stop.is_set():
                self._drain()
                if self._stop.is_set():
                    break
                if not self._can_step():
                    if self._dirty:
                        self._publish()
                    self._wait(0.5)
                    continue
                if self.speed is not None:
                    now = time.perf_counter()
                    wait = self._next_step_at - now
                    if wait > 0:
                        if self._dirty or now >= next_pub:
                            self._publish()
                            next_pub = now + period
                        self._wait(min(wait, period))
                        continue
                    self._next_step_at = max(self._next_step_at + 1.0 / self.speed, now - 0.1)
                if self.ui_busy.is_set():
                    self._yield_to_ui()
                    continue
                self._one_step()
                now = time.perf_counter()
                if self._dirty or now >= next_pub:
                    self._publish()
                    # a costly frame (the LSTM's full gradient) is read less often: at most ~1/5 of the time
                    after = time.perf_counter()
                    next_pub = after + max(period - (after - now), 4.0 * (after - now))
        except Exception as exc:  # noqa: BLE001 - a bug must not leave a silent, frozen screen
            self.paused = True
            self.on_event("error", f"{self.stopped_text}: {type(exc).__name__}: {exc}")

    def _yield_to_ui(self) -> None:
        """Sleep (the GIL released) while the screen draws, until it is done, an item comes, or max_yield."""
        end = time.perf_counter() + self.max_yield
        while self.ui_busy.is_set() and self._q.empty() and time.perf_counter() < end:
            time.sleep(0.0005)
        self.ui_busy.clear()

    def _wait(self, timeout: float) -> None:
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return
        if item is not None:
            self._handle(item)

    def _drain(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._handle(item)

    # ------------------------------------------------------------ the pause and speed keys
    def _toggle_pause(self, _item) -> None:
        """Space: the subclass's own _pause or _resume."""
        self._resume(None) if self.paused else self._pause(None)

    def _pause(self, _item) -> None:
        raise NotImplementedError

    def _resume(self, _item) -> None:
        raise NotImplementedError

    def _change_speed(self, item) -> None:
        """Faster / Slower: the next cap of bsim.controls.SPEEDS in that direction."""
        old = self.speed
        new = next_speed(old, isinstance(item, Faster))
        if new == old:
            self.on_event("notice", f"speed: already at {speed_text(old)}")
            return
        self.speed = new
        self._next_step_at = time.perf_counter()
        self.on_event("notice", f"speed {speed_text(old)} -> {speed_text(new)}{self.speed_unit}")
