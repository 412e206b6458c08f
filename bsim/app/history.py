"""What the panels remember of the frames they were shown (the view's side; no model access).

Frames arrive about 20 times a second, each describing the step just taken.
``Trace`` keeps the whole run at falling resolution: when it is full it drops
every other row and from then on keeps every other frame, so memory stays
bounded and a plot of the run since the last reset is always possible.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from bsim.frame import Frame

TRACE_COLUMNS = ("step", "batch_loss", "train_loss", "test_loss", "grad_norm", "full_grad_norm",
                 "cos_to_full", "dist_to_opt", "grad_noise", "ball_radius_theory")


def c_B(batch_size: int, n: int, sampling: str) -> float:
    """Variance factor of a batch mean: (N-B)/(B(N-1)) for distinct examples, 1/B with replacement."""
    if sampling == "replacement":
        return 1.0 / batch_size
    if n <= 1:
        return 0.0
    return (n - batch_size) / (batch_size * (n - 1))


def _f(v) -> float:
    return float("nan") if v is None else float(v)


class Trace:
    """Rows of floats, thinned by two whenever ``cap`` is reached."""

    def __init__(self, columns=TRACE_COLUMNS, cap: int = 2048):
        self.columns = columns
        self.cap = cap
        self.rows: list[tuple[float, ...]] = []
        self.stride = 1
        self._seen = 0

    def append(self, row: tuple[float, ...]) -> None:
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self.rows.append(row)
        if len(self.rows) >= self.cap:
            self.rows = self.rows[::2]
            self.stride *= 2

    def array(self) -> np.ndarray:
        if not self.rows:
            return np.zeros((0, len(self.columns)))
        return np.asarray(self.rows, dtype=float)

    def __len__(self) -> int:
        return len(self.rows)


class VarianceLog:
    """|g_B - G|^2 measured at each batch size visited (the latest ``keep`` frames at each B)."""

    def __init__(self, keep: int = 200):
        self.keep = keep
        self.by_b: dict[int, deque] = {}

    def add(self, batch_size: int, noise: float) -> None:
        if noise is None or not math.isfinite(noise):
            return
        self.by_b.setdefault(batch_size, deque(maxlen=self.keep)).append(noise)

    def points(self) -> list[tuple[int, float, int]]:
        """(B, mean of |g_B - G|^2, number of frames) for every B visited, by B."""
        return [(b, float(np.mean(v)), len(v)) for b, v in sorted(self.by_b.items()) if v]


class History:
    """Everything the panels plot, fed one frame at a time."""

    def __init__(self, iterates: int = 300):
        self.trace = Trace()
        self.variance = VarianceLog()
        self.b_changes: list[tuple[int, int, int]] = []   # (step, old B, new B)
        self.iterates: deque = deque(maxlen=iterates)
        self.radius_window: list[float] = []             # dist_to_opt^2 since the settings last changed
        self.latest: Frame | None = None
        self.notices: deque = deque(maxlen=12)           # (kind, text) of the latest notices, oldest first
        self.runs = 0                                    # how many times a new run began (reset, switch)
        self.version = 0
        self._settings = None

    def clear(self) -> None:
        self.trace = Trace()
        self.variance = VarianceLog()
        self.b_changes.clear()
        self.iterates.clear()
        self.radius_window.clear()
        self._settings = None
        self.runs += 1

    def new_run(self, f: Frame) -> bool:
        last = self.latest
        return last is not None and (f.step < last.step or f.problem != last.problem
                                     or len(f.theta) != len(last.theta) or f.n_train != last.n_train)

    def add(self, f: Frame) -> None:
        if self.new_run(f):
            self.clear()
        last = self.latest
        self.latest = f
        self.version += 1
        b = _setting_b(f)                  # a change made while paused is marked where it was made
        prev_b = self.b_changes[-1][2] if self.b_changes else None
        if prev_b is None:
            self.b_changes.append((f.step, b, b))
        elif b != prev_b:
            self.b_changes.append((f.step, prev_b, b))
        if f.step == 0 or (last is not None and f.step == last.step and f.tick == last.tick):
            return  # no step since the last frame (paused): nothing to plot
        self.trace.append((f.step, _f(f.batch_loss), _f(f.train_loss), _f(f.test_loss), _f(f.grad_norm),
                           _f(f.full_grad_norm), _f(f.cos_to_full), _f(f.dist_to_opt), _f(f.grad_noise),
                           _f(f.ball_radius_theory)))
        if f.grad_noise is not None:
            self.variance.add(f.batch_size, f.grad_noise)
        if f.theta:
            self.iterates.append(f.theta)
        settings = (self.current_b(), f.lr, f.sampling, f.momentum)
        if settings != self._settings:
            self._settings = settings
            self.radius_window = []
        if f.dist_to_opt is not None and math.isfinite(f.dist_to_opt):
            self.radius_window.append(f.dist_to_opt ** 2)
            if len(self.radius_window) > 800:
                del self.radius_window[:400]

    def current_b(self) -> int | None:
        return self.b_changes[-1][2] if self.b_changes else None

    def measured_radius(self) -> tuple[float | None, int]:
        """RMS of |theta - theta*| over the second half of the frames since the settings last changed.

        The first half is left out as the approach to the new stationary ball.
        Returns (radius, frames used); None with fewer than 20 frames.
        """
        w = self.radius_window
        half = w[len(w) // 2:]
        if len(half) < 20:
            return None, len(half)
        return math.sqrt(float(np.mean(half))), len(half)


def _setting_b(f: Frame) -> int:
    """The batch size in force (what the next step will use)."""
    return int(f.next_batch_size)
