"""Loss: the batch loss of each shown step, the train and test loss, a mark where B changed.

By default the last WINDOW steps slide by (``w``: the whole run); x in steps or
epochs (``x``); a log y axis, or a linear one for a loss that goes below 0 or reaches it (a
landscape's minima: the wells' below U(saddle) = 0, the non-uniform minima's at 0), until ``y``
chooses; the y range only widens, or narrows when the data fill less than
a third of it, so it does not jump from frame to frame. Test is dashed over the
solid train line; with an ensemble the chains' 10-90% band of the train loss is
shaded behind. Batch-size marks closer than MARK_GAP cells are merged.
"""

from __future__ import annotations

import numpy as np

from bsim.app.format import num
from bsim.app.history import COL, FrameBuffer
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.panel import Panel, fit, text_strip


def thin(a: np.ndarray, n: int) -> np.ndarray:
    """At most about n rows, evenly strided, always keeping the last row."""
    if len(a) <= n:
        return a
    idx = np.unique(np.concatenate((np.linspace(0, len(a) - 1, n).astype(int), [len(a) - 1])))
    return a[idx]


#: the sliding window's length in steps (w toggles the whole run)
WINDOW = 2000
#: batch-size marks closer than this many cells are merged into one
MARK_GAP = 8


def signed_loss(f) -> str | None:
    """Why a log axis cannot draw the frame's loss, or None: a landscape whose minima lie below 0 (the tilted
    wells: U = 0 at the saddle, the minima below it), or at 0 (the non-uniform minima, where SGD that stays
    reaches the minimum exactly: every example's quadratic has it)."""
    land = getattr(f, "landscape", None) if f is not None else None
    if land is None or not land.basins:
        return None
    low = min(b.loss for b in land.basins)
    return "below" if low < 0 else "zero" if low <= 0 else None


def nonpositive(*arrays) -> int:
    """How many finite values are <= 0 (a log axis drops them)."""
    with np.errstate(invalid="ignore"):
        return int(sum(np.sum(np.isfinite(a) & (np.asarray(a, dtype=float) <= 0)) for a in arrays))


class LossPanel(Panel):
    """Batch, train and test loss against steps or epochs, over a sliding window (w: the whole run), with
    the chains' 10-90% band and a mark where the batch size changed.

    Owns: the window, the x axis, the log scale (y; linear by default for a loss that reaches 0 or goes below) and a
    y range that moves only when the data leave it or fill under a third of it. Reads: the frames in the FrameBuffer.
    """

    TITLE = "Loss"

    def __init__(self, history: FrameBuffer, **kwargs):
        super().__init__(history, **kwargs)
        self.log_choice: bool | None = None     # y's choice; None: log unless the loss reaches 0 (signed)
        self.whole_run = False
        self.epochs = False
        self._yr: tuple[float, float] | None = None
        self._yr_for = None

    def cache_key(self, history: FrameBuffer):
        return (history.version, self.log_scale, self.whole_run, self.epochs)

    @property
    def log_scale(self) -> bool:
        """The y axis is logarithmic: as ``y`` chose, else unless the loss reaches 0 or below (``signed``)."""
        return self.log_choice if self.log_choice is not None else not self.signed()

    @log_scale.setter
    def log_scale(self, value: bool) -> None:
        self.log_choice = bool(value)

    def signed(self) -> str | None:
        """Why the problem's loss needs a linear axis by default ("below": it goes below 0, "zero": it
        reaches 0), or None (a log axis)."""
        return signed_loss(self.history.latest)

    def scale_title(self) -> tuple[str, ...]:
        """The chart's title, longest first: the scale, and why it is linear when the loss goes below 0."""
        if self.log_scale:
            return ("loss, log (y)",)
        if self.log_choice is None and self.signed() == "zero":
            return ("loss, linear (y): it reaches 0", "loss, linear (y): min 0", "loss, linear (y)")
        if self.log_choice is None:
            return ("loss, linear (y): it goes below 0", "loss, linear (y): < 0", "loss, linear (y)")
        return ("loss, linear (y)",)

    def toggle_log(self) -> bool:
        self.log_scale = not self.log_scale
        self.show(self.history)
        return self.log_scale

    def toggle_window(self) -> str:
        self.whole_run = not self.whole_run
        self.show(self.history)
        return "loss: the whole run" if self.whole_run else f"loss: the last {WINDOW:,} steps"

    def toggle_epochs(self) -> str:
        self.epochs = not self.epochs
        self.show(self.history)
        return f"loss: x in {'epochs' if self.epochs else 'steps'}"

    def y_range(self, lo_hi: tuple[float, float] | None) -> tuple[float, float]:
        """The data's range with hysteresis: widen at once, narrow only when the data fill under a third."""
        key = (self.log_scale, self.whole_run, self.history.runs)
        if lo_hi is None:
            return self._yr or (1e-3, 1.0)
        nlo, nhi = lo_hi
        if not self.log_scale and max(abs(nlo), abs(nhi)) <= 1e-12:   # a loss of 0 (the non-uniform minima):
            nlo, nhi = -1e-4, 1e-3                                    # 0 near the bottom, not a +-6e-14 axis
        if self._yr is None or self._yr_for != key:
            self._yr, self._yr_for = self._margin(nlo, nhi), key
            return self._yr
        lo, hi = self._yr
        if self.log_scale:
            span = np.log10(hi) - np.log10(lo)
            small = (np.log10(nhi) - np.log10(nlo)) < span / 3
        else:
            small = (nhi - nlo) < (hi - lo) / 3
        if small:
            self._yr = self._margin(nlo, nhi)
        elif nlo < lo or nhi > hi:
            self._yr = self._margin(min(lo, nlo), max(hi, nhi))
        return self._yr

    def _margin(self, lo: float, hi: float) -> tuple[float, float]:
        """The range widened by a tenth of its span each side, so a new extreme seldom moves the axis."""
        if self.log_scale:
            a, b = float(np.log10(lo)), float(np.log10(hi))
            m = 0.1 * (b - a)
            return 10 ** max(a - m, -300.0), 10 ** min(b + m, 300.0)   # a diverging loss stays drawable
        m = 0.1 * (hi - lo)
        return lo - m, hi + m

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        data = h.trace.array()
        if f is None or len(data) == 0:
            return self.message("no steps yet: the loss appears once the run takes its first step", width, height)
        span = "whole run" if self.whole_run else f"last {num(WINDOW)}"
        out = [text_strip(fit(self.legends(f), width), width)]
        if not self.whole_run:
            data = data[data[:, 0] >= data[-1, 0] - WINDOW]
        rows = thin(data, 2 * width)
        xcol = COL["epoch"] if self.epochs else 0
        x = rows[:, xcol]
        batch, train, test = rows[:, 1], rows[:, 2], rows[:, 3]
        q10, q90 = rows[:, COL["chains_train_loss_q10"]], rows[:, COL["chains_train_loss_q90"]]
        lo_x = float(x[0])
        xr = (lo_x, float(max(x[-1], lo_x + (1e-3 if self.epochs else 1))))
        yr = self.y_range(data_range(batch, train, test, q10, q90, log=self.log_scale))
        chart = Chart(width, height - 2, xlim=xr, ylim=yr, ylog=self.log_scale)
        if np.isfinite(q10).any():
            px, p10, p90 = chart.sx(x), chart.sy(q10), chart.sy(q90)
            chart.canvas.segments(px, p10, px, p90, "purple")
        merged = self.batch_marks(chart, rows, xcol)
        chart.points(x, batch, "grey")
        if np.isfinite(test).any():
            chart.line(x, test, "orange")
        chart.line(x, train, "blue")
        if np.isfinite(test).any():
            self.dashes(chart, x, test)
        title = self.fitting_title(chart)
        chart.label(0, 0, title)
        below = nonpositive(batch, train, test) if self.log_scale else 0
        self.top_right(chart, len(title), merged, self.off_chart(batch, yr), below)
        xname = "epoch" if self.epochs else "step"
        for title in (f"{xname} · {span} (w)", f"{xname} (w)", xname):   # the longest that fits the plot
            if len(title) <= chart.canvas.w:
                chart.label(chart.canvas.h - 1, -1, title)
                break
        out += chart.strips()
        out.append(text_strip(fit([self.readout(f)], width), width))
        return out[:height]

    @staticmethod
    def legends(f) -> list:
        """The legend's wordings (fit takes the first that fits; a group is shown whole or not at all)."""
        out = []
        for chains in ("▒ chains 10-90%", "▒ K 10-90%"):
            groups = [(0, [("● batch ", "grey")]), (0, [("━ train ", "blue")])]
            if f.test_loss is not None:
                groups.append((1, [("╌ test ", "orange")]))
            if f.chains and f.chains > 1:
                groups.append((1, [(chains, "purple")]))
            out.append(groups)
        return out

    def fitting_title(self, chart: Chart) -> str:
        """The longest of the titles that leaves a few cells for the notes on its right."""
        titles = self.scale_title()
        return next((t for t in titles if len(t) <= chart.canvas.w - 8), titles[-1])

    @staticmethod
    def top_right(chart: Chart, left: int, merged: int, above: int, below: int = 0) -> None:
        """The chart's top-right notes (B changes merged into one mark, batch losses above the chart, losses
        <= 0 a log axis leaves out), each long, short or not at all, so that none runs into the title on the
        left (``left`` cells)."""
        notes = ([(f"+{merged} B changes", f"+{merged}B", "purple")] if merged else []) + \
                ([(f"▲{above} off chart", f"▲{above}", "grey")] if above else []) + \
                ([(f"▼{below} ≤0 not drawn (y)", f"▼{below}≤0", "red")] if below else [])
        room, col = chart.canvas.w - left - 1, -1
        for long, short, color in reversed(notes):
            text = long if len(long) <= room else short if len(short) <= room else None
            if text is None:
                continue
            chart.label(0, col, text, color)
            col -= len(text) + 1
            room -= len(text) + 1

    @staticmethod
    def readout(f) -> list:
        """The readout's groups (rank, parts): train first, then test, then the batch loss or the chains' band."""
        groups = []
        if f.chains_train_loss is None:
            groups.append((2, [("batch ", "axis"), (num(f.batch_loss), None), ("  ", None)]))
        groups.append((0, [("train ", "axis"), (num(f.train_loss), "blue")]))
        if f.test_loss is not None:
            groups.append((1, [(" test ", "axis"), (num(f.test_loss), "orange")]))
        if f.chains_train_loss is not None:
            lo, hi = f.chains_train_loss_q10, f.chains_train_loss_q90
            dash = " to " if min(lo if lo is not None else 0, hi if hi is not None else 0) < 0 else "-"   # not "-0.4--0.39"
            groups.append((2, [(f" K={f.chains} ", "axis"), (num(lo), "purple"), (dash, "axis"), (num(hi), "purple")]))
        return groups

    def dashes(self, chart: Chart, x, test) -> None:
        """Test over train: every other stretch of the test line drawn again on top (dashed where they meet)."""
        px, py = chart.sx(x), chart.sy(test)
        if px.size < 2:
            return
        keep = (np.arange(px.size - 1) // 2) % 2 == 0
        chart.canvas.segments(px[:-1][keep], py[:-1][keep], px[1:][keep], py[1:][keep], "orange")

    def batch_marks(self, chart: Chart, rows, xcol: int) -> int:
        """A dotted line and a label where B changed; changes closer than MARK_GAP cells count as one
        (returns how many were merged so)."""
        lo = rows[0, 0]
        last_px, merged = None, 0
        steps, xs = rows[:, 0], rows[:, xcol]
        for s, _old, new in self.history.b_changes[1:]:
            if s < lo:
                continue
            xv = float(np.interp(s, steps, xs)) if xcol else float(s)
            px = float(chart.sx(xv))
            if last_px is not None and px - last_px < 2 * MARK_GAP:
                merged += 1
                continue
            last_px = px
            chart.vline(xv, "purple")
            chart.xlabels.append((xv, f"B{new}"))
        return merged

    @staticmethod
    def off_chart(batch, yr) -> int:
        """How many batch losses lie above the chart (the y range ignores none, but a log axis drops zeros)."""
        with np.errstate(invalid="ignore"):
            return int(np.sum(batch > yr[1]))
