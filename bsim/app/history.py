"""What the panels remember of the frames they were shown (the view's side; no model access).

Frames arrive about 20 times a second, each describing the step just taken.
``Trace`` keeps the whole run at falling resolution: when it is full it drops
every other row and from then on keeps every other frame, so memory stays
bounded and a plot of the run since the last reset is always possible.
The science (c_B, the averages, the measured ball) comes with the frames
(``frame.stats``, ``frame.ball``): nothing here recomputes it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from bsim.frame import Frame

TRACE_COLUMNS = ("step", "batch_loss", "train_loss", "test_loss", "grad_norm", "full_grad_norm",
                 "cos_to_full", "dist_to_opt", "grad_noise", "ball_radius_theory",
                 "ball_radius", "chains_ball_radius", "chains_train_loss_q10", "chains_train_loss_q90", "epoch")
COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}


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


class FrameBuffer:
    """Everything the panels plot, fed one frame at a time.

    Owns: the trace of the run's scalar columns, the batch-size changes, the
    recent iterates (small problems), the latest frame and the latest notices.
    Touches nothing else: the app feeds it frames and notices, panels read it.
    """

    def __init__(self, iterates: int = 300):
        self.trace = Trace()
        self.b_changes: list[tuple[int, int, int]] = []   # (step, old B, new B)
        self.iterates: deque = deque(maxlen=iterates)
        self.latest: Frame | None = None
        self.notices: deque = deque(maxlen=12)           # (kind, text) of the latest notices, oldest first
        self.runs = 0                                    # how many times a new run began (reset, switch)
        self.version = 0
        self.settings: tuple | None = None               # (B, lr, sampling, momentum) of the latest frame
        self.previous_ball: tuple[float, str] | None = None   # (measured radius, "B=4") of the last setting
        self.chains_mean = RunningMean()                 # the chains' ball since the settings or K changed

    @property
    def chains_ball(self) -> tuple[float, int] | None:
        """(sqrt of the mean of chains_ball_radius^2 over the frames since the last change, frames); None."""
        return self.chains_mean.rms()

    def clear(self) -> None:
        self.trace = Trace()
        self.b_changes.clear()
        self.iterates.clear()
        self.runs += 1
        self.previous_ball = None
        self.settings = None
        self.chains_mean = RunningMean()

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
        self._follow_settings(f, last)
        if f.step == 0 or (last is not None and f.step == last.step and f.tick == last.tick):
            return  # no step since the last frame (paused): nothing to plot
        ball = f.ball
        if f.chains_ball_radius is not None and ball is not None and ball.burn_in_left == 0:
            self.chains_mean.add(f.chains_ball_radius ** 2)
        self.trace.append((f.step, _f(f.batch_loss), _f(f.train_loss), _f(f.test_loss), _f(f.grad_norm),
                           _f(f.full_grad_norm), _f(f.cos_to_full), _f(f.dist_to_opt), _f(f.grad_noise),
                           _f(f.ball_radius_theory), _f(f.ball_radius), _f(f.chains_ball_radius),
                           _f(f.chains_train_loss_q10), _f(f.chains_train_loss_q90), _f(f.epoch)))
        if f.theta:
            self.iterates.append(f.theta)


    def _follow_settings(self, f: Frame, last: Frame | None) -> None:
        """At a change of B, lr, sampling or momentum: keep the ball of the setting left behind (measured, else
        predicted when it was left before its burn-in ended) and restart the trail (it shows the new setting
        only)."""
        key = (f.next_batch_size, f.next_lr, f.sampling, f.momentum)
        since = f.runner.chains_since if f.runner is not None else None
        if self.settings is not None and key != self.settings[:4]:
            left = None if last is None else next((r for r in (last.ball_radius, last.ball_radius_theory) if r), None)
            if left is not None:
                self.previous_ball = (float(left), _what_changed(self.settings[:4], key))
            self.iterates.clear()
            self.chains_mean = RunningMean()
        elif self.settings is not None and (since != self.settings[4] or f.chains != self.settings[5]):
            self.chains_mean = RunningMean()
        self.settings = key + (since, f.chains)


def _what_changed(old: tuple, new: tuple) -> str:
    """The previous setting by what changed: "B=8", "lr=0.05", "iid", "m=0.9"."""
    names = (("B=", "{:d}"), ("lr=", "{:g}"), ("", "{}"), ("m=", "{:g}"))
    for (prefix, form), a, b in zip(names, old, new):
        if a != b:
            return prefix + form.format(a)
    return "before"


class RunningMean:
    """The mean of values since it was made (the views' own average of a frame's number, stated as such)."""

    def __init__(self):
        self.total, self.n = 0.0, 0

    def add(self, v: float) -> None:
        self.total += v
        self.n += 1

    def rms(self) -> tuple[float, int] | None:
        return ((self.total / self.n) ** 0.5, self.n) if self.n else None


def _setting_b(f: Frame) -> int:
    """The batch size in force (what the next step will use)."""
    return int(f.next_batch_size)
