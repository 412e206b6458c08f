"""The race's loss chart: every lane's train loss (solid) and test loss (dashed) in its own colour,
against the race's axis (samples, steps or seconds), with a legend of the batch sizes.

The conventions of the main loss chart (bsim.app.widgets.loss), inherited from it: a log y axis
(``y``; linear until ``y`` is pressed when the loss goes below 0, as a landscape's does), and a y range that widens at once but narrows only when the data fill under a third of it,
so it does not jump from frame to frame. Unlike the main chart it shows the whole race by default,
from its start, so the descent that decides the race stays on screen; ``w`` switches to a window of
the last WINDOW steps of the lane that has taken the most steps, on the race's axis.
"""

from __future__ import annotations

import numpy as np

from bsim.app.format import num
from bsim.app.race.history import AXIS_UNITS, LANE_COL
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.loss import WINDOW, LossPanel, nonpositive, signed_loss, thin
from bsim.app.widgets.panel import fit, text_strip


class RaceLossPanel(LossPanel):
    """Train and test loss of every lane against the race's axis.

    Owns: the window, the log scale and the stable y range (LossPanel's). Reads: the lanes'
    race traces and colours in the RaceHistory.
    """

    TITLE = "Loss of each lane"

    def __init__(self, history, **kwargs):
        super().__init__(history, **kwargs)
        self.whole_run = True      # a race is read from its start: who got down first (w: the last steps)

    def cache_key(self, history):
        return (history.lane_version, history.by, self.log_scale, self.whole_run)

    def signed(self) -> str | None:
        """Why the lanes' loss needs a linear axis by default (a landscape's: LossPanel.signed), or None."""
        return next((why for lane in self.history.order if lane.latest is not None
                     for why in [signed_loss(lane.latest.frame)] if why), None)

    def toggle_window(self) -> str:
        self.whole_run = not self.whole_run
        self.show(self.history)
        return "loss: the whole race" if self.whole_run else f"loss: the last {WINDOW:,} steps of the lane ahead in steps"

    def window_start(self, arrays: dict, col: int) -> float | None:
        """Where the window starts on the axis: WINDOW steps before the last step of the lane with most steps."""
        steps = LANE_COL["steps"]
        lead = max(arrays.values(), key=lambda a: a[-1, steps])
        cut = lead[-1, steps] - WINDOW
        if self.whole_run or cut <= lead[0, steps]:
            return None
        return float(np.interp(cut, lead[:, steps], lead[:, col]))

    def legend(self, lanes, width: int, has_test: bool) -> list:
        groups = [(0, [(f"━ {h.label} ", h.color)]) for h in lanes]
        if has_test:
            groups += [(1, [(" ━ train", "axis")]), (1, [(" ╌ test", "axis")])]
        return fit([groups], width)

    def build(self, width: int, height: int):
        h = self.history
        lanes = [lane for lane in h.order if len(lane.trace)]
        if not lanes:
            return self.message("no steps yet: each lane's loss appears once the race takes its first step",
                                width, height)
        by = h.by
        col = LANE_COL[by]
        arrays = {lane.key: lane.trace.array() for lane in lanes}
        start = self.window_start(arrays, col)
        shown = {}
        for b, a in arrays.items():
            if start is not None:
                a = a[a[:, col] >= start]
            shown[b] = thin(a, 2 * width) if len(a) else a
        lo = 0.0 if start is None else start      # the whole race: from its start, where every lane began
        hi = max(float(a[-1, col]) for a in shown.values() if len(a))
        xr = (lo, max(hi, lo + (1e-3 if by == "time" else 1.0)))
        train = [a[:, LANE_COL["train_loss"]] for a in shown.values()]
        test = [a[:, LANE_COL["test_loss"]] for a in shown.values()]
        has_test = any(np.isfinite(t).any() for t in test)
        yr = self.y_range(data_range(*train, *test, log=self.log_scale))
        out = [text_strip(self.legend(lanes, width, has_test), width)]
        chart = Chart(width, height - 1, xlim=xr, ylim=yr, ylog=self.log_scale)
        for lane in lanes:
            a = shown[lane.key]
            if not len(a):
                continue
            x = a[:, col]
            if has_test:
                self.dashed(chart, x, a[:, LANE_COL["test_loss"]], lane.color)
            chart.line(x, a[:, LANE_COL["train_loss"]], lane.color)
        title = self.fitting_title(chart)
        chart.label(0, 0, title)
        if self.log_scale:
            self.top_right(chart, len(title), 0, 0, nonpositive(*train, *test))
        unit = AXIS_UNITS[by]
        span = "whole race" if start is None else f"last {num(hi - start)}"
        for title in (f"{unit} · {span} (w)", f"{unit} (w)", unit):   # the longest that fits the plot
            if len(title) <= chart.canvas.w:
                chart.label(chart.canvas.h - 1, -1, title)
                break
        out += chart.strips()
        return out[:height]

    @staticmethod
    def dashed(chart: Chart, x, y, color: str) -> None:
        """The line in dashes of 3 dot columns with gaps of 3 (test, told from the solid train line where they meet)."""
        px, py = chart.sx(x), chart.sy(y)
        ok = np.isfinite(px) & np.isfinite(py)
        px, py = px[ok], py[ok]
        if px.size == 1:
            chart.canvas.dots(np.rint(px), np.rint(py), color)
            return
        if px.size < 2:
            return
        cols = np.arange(np.ceil(px[0]), np.floor(px[-1]) + 1)
        ys = np.interp(cols, px, py)
        keep = (cols // 3) % 2 == 0
        pair = keep[:-1] & keep[1:]
        chart.canvas.segments(cols[:-1][pair], ys[:-1][pair], cols[1:][pair], ys[1:][pair], color)
