"""The epsilon-ball: how far the iterates wander around theta*, measured against predicted.

The plane keeps its scale when B, lr or sampling change (a shrinking ball is
seen to shrink); it is fitted once per run, to twice the ball as soon as
one is known (predicted or measured), and again on ``z``. The previous
setting's measured ball stays as a faint ring until the next change, a scale
bar says what a cell is, and what lies off the chart is counted at its edge.
With an ensemble (``e``: chains = K) the chains at the current step are a
cloud over the trail, their ball (averaged over the frames since the last
change, as stated) beside the trail's.

Measured and predicted radius come with the frame (``frame.ball``, bsim.stats):
measured, sqrt(mean |theta - theta*|^2) over the steps since the settings last
changed, after a burn-in; predicted, sqrt(tr S) of the stationary second moment
(exact for iid sampling on least squares, a linearisation at theta* for
logistic regression). For 2-D problems
the panel is the parameter plane: loss contours, theta*, the recent iterates,
both radii as circles and the step just taken as a line ending at theta.
"""

from __future__ import annotations

import math

import numpy as np
from textual.message import Message

from bsim.app.format import num
from bsim.app.history import COL, FrameBuffer
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.loss import thin
from bsim.app.widgets.panel import Panel, fit, text_strip
from bsim.controls import PlaneRequest


class PlaneWanted(Message):
    """The panel needs the loss on this grid of the parameter plane."""

    def __init__(self, request: PlaneRequest):
        super().__init__()
        self.request = request


def contour_mask(losses: np.ndarray, levels_per_octave: float = 1.0) -> np.ndarray:
    """Dots where the loss crosses a level L_min + d 2^(k / levels_per_octave) (k integer).

    Levels are spaced geometrically above the grid's minimum so that the
    ellipses near theta* are as visible as the far ones.
    """
    lo, hi = float(np.nanmin(losses)), float(np.nanmax(losses))
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return np.zeros(losses.shape, dtype=bool)
    d = span * 2.0 ** -7
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.floor(np.log2((losses - lo) / d + 1.0) * levels_per_octave)
    q[~np.isfinite(q)] = -1
    m = np.zeros(losses.shape, dtype=bool)
    m[:, :-1] |= q[:, :-1] != q[:, 1:]
    m[:-1, :] |= q[:-1, :] != q[1:, :]
    return m


#: half-widths of the plane: 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per decade
NICE = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: the plane's half-height is this many times the ball (the first ball known fills the panel)
FIT = 2.0
#: the logistic ball's linearisation, against an independent ensemble (issue 10): (lr / limit, how low)
LOGREG_VALIDITY = "low by 3%/13%/31% at 0.05/0.2/0.5× limit"


def nice_above(v: float) -> float:
    """The smallest NICE x 10^k at or above v."""
    k = math.floor(math.log10(v))
    for m in NICE + (10.0,):
        if m * 10 ** k >= v * (1 - 1e-12):
            return m * 10 ** k
    return 10.0 ** (k + 1)


def nice_below(v: float) -> float:
    """The largest 1, 2 or 5 x 10^k at or below v (a scale bar's length)."""
    k = math.floor(math.log10(v))
    for m in (5.0, 2.0, 1.0):
        if m * 10 ** k <= v * (1 + 1e-12):
            return m * 10 ** k
    return 10.0 ** k


class BallPanel(Panel):
    """The ε-ball: the trail of iterates, the ensemble's cloud, the predicted ring (labelled by its kind, the
    iid prediction beside a reshuffled one) and the measured rings around θ*; two parameters draw the plane
    with loss contours, more draw |θ - θ*| over time, the LSTM its spread over time.

    Owns: its scale (fitted once, held across changes of B, lr and sampling until z, a reset or a new
    problem) and the previous setting's ring. Reads: frame.ball, the ball columns, chains_theta, the
    FrameBuffer's trail, and the loss grid the runner answers (PlaneRequest). Computes no prediction.
    """

    TITLE = "ε-ball around θ*"

    def __init__(self, history: FrameBuffer, **kwargs):
        super().__init__(history, **kwargs)
        self._radius = None          # half-width of the plane window, once fitted (None: follow the iterates)
        self._fitted = False         # fitted to a ball: kept until z, a reset or a new problem
        self._runs = -1
        self._wanted = None          # the last plane asked for

    def refit(self) -> None:
        """Fit the scale again to the ball in force (z)."""
        self._radius, self._fitted = None, False
        self._key = None
        self.restyle()

    # ----------------------------------------------------------- numbers
    def radii(self, f) -> tuple[float | None, float | None]:
        """(measured, predicted) RMS radius, as the statistics computed them."""
        return f.ball_radius, f.ball_radius_theory

    def prediction_groups(self, f) -> list:
        """The prediction labelled by kind; under shuffle the iid prediction beside it: groups (rank, parts)."""
        ball = f.ball
        meas, pred = self.radii(f)
        if ball is not None and ball.stable is False:
            limit = f" (lr limit {num(ball.lr_limit)})" if ball.lr_limit else ""
            return [(0, [("unstable:", "red")]), (1, [(" no stationary ball", "red")]), (2, [(limit, "red")]),
                    (0, [(" lower the lr", "red")])]
        if pred is None:
            note = ball.note if ball is not None else ""
            return [(0, [("pred ", "axis"), ("—", "orange")]), (1, [(" " + (note or "not yet known"), "axis")])]
        kind = ball.kind if ball is not None else "exact"
        groups = [(0, [("pred ", "axis"), (num(pred), "orange")]), (2, [(f" {kind}", "axis")])]
        if ball is not None and kind == "linearised" and ball.limit_fraction is not None:
            groups.append((3, [(f" at {ball.limit_fraction:.2g}× lr limit", "axis")]))
        if ball is not None and ball.holds_from is not None:    # B changed mid-epoch: not yet
            groups.append((0, [(f" from step {ball.holds_from:,}", "orange")]))
        if ball is not None and ball.radius_iid is not None and kind == "reshuffled":
            groups.append((1, [("  iid ", "axis"), (num(ball.radius_iid), "orange")]))
        if f.momentum:
            groups.append((1, [(f"  m={f.momentum:g}", "axis")]))
        return groups

    def measured_groups(self, f, trail: bool = True) -> list:
        """The trail's measured ball and the chains' (time-averaged over the frames since the last change).

        ``trail`` False leaves out the word "trail" (for a narrow panel).
        """
        h, ball = self.history, f.ball
        meas, pred = self.radii(f)
        if meas is not None:
            groups = [(0, [("meas ", "axis")] + ([("trail ", "axis")] if trail else []) + [(num(meas), "green")])]
            if pred:
                groups.append((1, [(f" ×{meas / pred:.2f}", None)]))
        elif ball is not None and ball.burn_in_left > 0:
            groups = [(0, [("meas ", "axis"), ("settling", "axis")]),
                      (1, [(f" ({num(ball.burn_in_left)} steps)", "axis")])]
        else:
            groups = [(0, [("meas ", "axis"), ("settling…", "axis")])]
        if f.chains and f.chains > 1:
            avg = h.chains_ball
            if avg is not None:
                r, n = avg
                groups.append((1, [(f"  K={f.chains} ", "axis"), (num(r), "purple")]))
                if pred:
                    groups.append((2, [(f" ×{r / pred:.2f}", None)]))
                groups.append((3, [(f" ({n} fr)", "axis")]))
            elif f.chains_ball_radius is not None:
                groups.append((1, [(f"  K={f.chains} now ", "axis"), (num(f.chains_ball_radius), "purple")]))
        return groups

    def prediction_line(self, f, width: int) -> list:
        return fit([self.prediction_groups(f)], width)

    def measured_line(self, f, width: int) -> list:
        return fit([self.measured_groups(f), self.measured_groups(f, trail=False)], width)

    def readout(self, f, width: int) -> list:
        """The prediction and the measured ball on one line (for a short panel)."""
        def both(trail: bool) -> list:
            rank, first = self.measured_groups(f, trail)[0]
            return (self.prediction_groups(f) + [(rank, [("  ", None)] + first)]
                    + self.measured_groups(f, trail)[1:])
        return fit([both(True), both(False)], width)

    def theory_note(self, f, width: int) -> list:
        """What the prediction assumes (or the chains' notice); dropped whole when the panel is too narrow."""
        ball = f.ball
        if f.chains_notice:
            texts = [(f.chains_notice, "red")]
        elif ball is not None and ball.kind == "linearised":
            texts = [(LOGREG_VALIDITY, "axis")]
        elif ball is not None and ball.kind == "reshuffled":
            texts = [("reshuffled: each example once an epoch", "axis"), ("each example once an epoch", "axis")]
        else:
            texts = [(f"on: {f.sampling}", "axis"), (f"{f.sampling}", "axis")]
        return fit([[(1, [t])] for t in texts], width)

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        if f is None:
            return self.message("starting…", width, height)
        if f.dist_to_opt is None:
            self._title("Spread (no θ*)")
            return self.build_spread(width, height)
        self._title(self.TITLE)
        if len(f.theta) == 2 and f.theta_star is not None:
            return self.build_plane(width, height)
        return self.build_distance(width, height)

    # ----------------------------------------------------------- no theta* (LSTM)
    def build_spread(self, width: int, height: int):
        """The spread of the iterates around their running average over steps (no θ* to draw a ball around)."""
        h, f = self.history, self.history.latest
        legend = [("━ trail ", "green"), ("━ chains ", "purple"), ("rms spread, no θ*", "axis")]
        out = [text_strip(legend, width)]
        data = h.trace.array()
        ball = f.ball
        rows = thin(data, 2 * width) if len(data) else data
        series = rows[:, [COL["ball_radius"], COL["chains_ball_radius"]]] if len(rows) else rows
        if len(rows) == 0 or not np.isfinite(series).any():
            left = f" ({num(ball.burn_in_left)} steps to go)" if ball is not None and ball.burn_in_left else ""
            return out + self.message(f"no known optimum (non-convex): the spread around the running average of "
                                      f"the iterates instead, settling{left}",
                                      width, height - 1)
        step = rows[:, 0]
        yr = data_range(series, log=True) or (1e-3, 1.0)
        chart = Chart(width, height - 3, xlim=(float(step[0]), float(max(step[-1], step[0] + 1))), ylim=yr,
                      ylog=True)
        chart.line(step, series[:, 0], "green")
        chart.line(step, series[:, 1], "purple")
        chart.label(0, 0, "rms spread")
        chart.label(chart.canvas.h - 1, -1, "step")
        out += chart.strips()
        meas = ball.radius_measured if ball is not None else None
        window = f" over {num(ball.window_steps)} steps" if ball is not None and meas is not None else ""
        out.append(text_strip([("spread ", "axis"), (num(meas), "green"), (window, "axis")]
                              + ([(f"  K={f.chains} ", "axis"), (num(f.chains_ball_radius), "purple")]
                                 if f.chains and f.chains > 1 else []), width))
        out.append(text_strip([("around the iterates' running average (no known optimum)", "axis")], width))
        return out[:height]

    # ----------------------------------------------------------- d > 2
    def build_distance(self, width: int, height: int):
        h, f = self.history, self.history.latest
        data = h.trace.array()
        out = [text_strip([("━ |θ-θ*| ", "blue"), ("┄ predicted ", "orange"), ("┄ measured rms", "green")], width)]
        if len(data) == 0:
            return out + self.message("no step yet", width, height - 1)
        chart = self.draw_distance(data, f, width, height - 4)
        chart.label(0, 0, "|θ-θ*|")
        out += chart.strips()
        out.append(text_strip(self.prediction_line(f, width), width))
        out.append(text_strip(self.measured_line(f, width), width))
        out.append(text_strip(self.theory_note(f, width), width))
        return out[:height]

    def draw_distance(self, data, f, width: int, rows: int, ylim=None, xaxis: bool = True) -> Chart:
        """|θ-θ*| (blue) and the chains' spread (purple) over the steps in ``data``, with the predicted (orange)
        and measured (green) radius as lines, on a log y range ``ylim`` (None: the drawn |θ-θ*| and the radii's):
        the d > 2 chart, here and in a race."""
        rows_ = thin(data, 2 * width)
        step = rows_[:, 0]
        meas, pred = self.radii(f)
        if ylim is None:
            ylim = data_range(rows_[:, COL["dist_to_opt"]], [pred] if pred else None, [meas] if meas else None,
                              log=True) or (1e-3, 1.0)
        chart = Chart(width, rows, xlim=(float(step[0]), float(max(step[-1], step[0] + 1))), ylim=ylim, ylog=True,
                      xaxis=xaxis)
        if pred:
            chart.hline(pred, "orange")
        if meas:
            chart.hline(meas, "green")
        chart.line(step, rows_[:, COL["dist_to_opt"]], "blue")
        chart.line(step, rows_[:, COL["chains_ball_radius"]], "purple")
        chart.label(chart.canvas.h - 1, -1, "step")
        return chart

    # ----------------------------------------------------------- d = 2
    def ball_size(self, f) -> float | None:
        """The largest ball known now (predicted, the trail's, the chains'): what the scale is fitted to."""
        meas, pred = self.radii(f)
        known = [r for r in (pred, meas, f.chains_ball_radius) if r is not None and math.isfinite(r) and r > 0]
        ball = f.ball
        if ball is not None and ball.stable is False:
            return None
        return max(known) if known else None

    def window(self, f, cw: int, ch: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Plane limits centred on theta*, equal units per dot on both axes.

        Fitted to FIT times the ball the first time one is known in this run, then
        kept (B, lr and sampling changes do not move it) until ``z``, a reset or
        another problem. Before a ball is known it follows the current iterate.
        Depends only on the frames' numbers, never on how many frames were drawn:
        the live app and an export of the same step agree.
        """
        h = self.history
        if self._runs != h.runs:
            self._runs, self._radius, self._fitted = h.runs, None, False
        star = np.asarray(f.theta_star, dtype=float)
        if not self._fitted:
            ball = self.ball_size(f)
            if ball is not None:
                self._radius, self._fitted = nice_above(FIT * ball), True
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    need = float(np.linalg.norm(np.asarray(f.theta, dtype=float) - star)) * 1.15
                if not math.isfinite(need) or need <= 0:
                    need = 1.0
                r = self._radius
                if r is None or need > r or need < r / 3:
                    self._radius = nice_above(need)
        r = self._radius
        dw, dh = 2 * cw, 4 * ch
        u = 2 * r / (min(dw, dh) - 1)
        hx, hy = u * (dw - 1) / 2, u * (dh - 1) / 2
        return (float(star[0] - hx), float(star[0] + hx)), (float(star[1] - hy), float(star[1] + hy))

    def scale_bar(self, xlim, cw: int, width: int) -> list:
        """A bar of a round length (1, 2 or 5 x 10^k), what one cell is in θ units, the x axis's name."""
        cell = (xlim[1] - xlim[0]) / cw
        length = nice_below(cell * min(10, max(cw // 4, 2)))
        cells = max(int(round(length / cell)), 1)
        bar = "├" + "─" * max(cells - 2, 0) + "┤" if cells >= 2 else "│"
        head = (0, [(bar, "white"), (f" {num(length)}", "axis")])
        axis = (2, [("  θ₁ →", "axis")])
        return fit([[head, (1, [(f" (1 cell = {num(cell)} in θ)", "axis")]), axis],
                    [head, (1, [(f" (1 cell = {num(cell)})", "axis")]), axis],
                    [head, (1, [(f" (cell {num(cell)})", "axis")]), axis]], width)

    def off_chart(self, chart: Chart, xlim, ylim, f) -> None:
        """An arrow at the edge toward θ when it is off the chart, and how far it is."""
        x, y = f.theta
        if xlim[0] <= x <= xlim[1] and ylim[0] <= y <= ylim[1]:
            return
        cx, cy = (xlim[0] + xlim[1]) / 2, (ylim[0] + ylim[1]) / 2
        dx, dy = x - cx, y - cy
        arrows = "→↗↑↖←↙↓↘"
        arrow = arrows[int(round(math.atan2(dy, dx) / (math.pi / 4))) % 8]
        t = min((xlim[1] - cx) / abs(dx) if dx else math.inf, (ylim[1] - cy) / abs(dy) if dy else math.inf)
        ex, ey = cx + dx * t * 0.97, cy + dy * t * 0.97
        chart.mark(ex, ey, arrow, "yellow")
        text = f"θ off chart: |θ-θ*| {num(f.dist_to_opt)} (z: fit)"
        chart.label(chart.canvas.h - 1, 0, text, "yellow")

    @staticmethod
    def draw_contours(chart: Chart, grid) -> None:
        """The loss's contour lines from the runner's grid of values (its row 0 is y0, the chart's bottom)."""
        iy, ix = np.nonzero(contour_mask(grid)[::-1, :])
        chart.canvas.dots(ix, iy, "contour")

    def draw_marks(self, chart: Chart, f, xlim, ylim, previous_ball=None) -> None:
        """Over the plane: the trail of iterates, the chains' cloud, the rings (the previous setting's measured
        ball, then predicted, measured and the chains'), the last step, θ* and the arrow toward θ off the chart."""
        h = self.history
        star = f.theta_star
        pts = np.asarray(list(h.iterates), dtype=float)
        if len(pts):
            chart.points(pts[:, 0], pts[:, 1], "blue")
        cloud = f.chains_theta
        if cloud is not None and len(cloud) > 1:
            chart.points(cloud[:, 0], cloud[:, 1], "purple")
        meas, pred = self.radii(f)
        if previous_ball is not None:
            chart.circle(star[0], star[1], previous_ball[0], "grey")
        if pred:
            chart.circle(star[0], star[1], pred, "orange")
        if meas:
            chart.circle(star[0], star[1], meas, "green")
        if h.chains_ball is not None and f.chains and f.chains > 1:
            chart.circle(star[0], star[1], h.chains_ball[0], "purple")
        if f.theta_prev is not None and len(f.theta_prev) == 2:
            a, b = f.theta_prev, f.theta
            chart.line([a[0], b[0]], [a[1], b[1]], "yellow")
            chart.points([b[0]], [b[1]], "white")
        chart.mark(star[0], star[1], "+", "white")
        self.off_chart(chart, xlim, ylim, f)

    def build_plane(self, width: int, height: int):
        h, f = self.history, self.history.latest
        legend = [(0, [("+θ* ", "white")]), (0, [("· trail ", "blue")]), (0, [("○ pred ", "orange")]),
                  (0, [("○ meas ", "green")])]
        if f.chains and f.chains > 1:
            legend.append((1, [(f"∴ {f.chains} chains ", "purple")]))
        if h.previous_ball is not None:
            legend.append((1, [(f"○ {h.previous_ball[1]} ", "grey")]))
        legend.append((2, [("─ step", "yellow")]))
        out = [text_strip(fit([legend], width), width)]
        texts = [self.prediction_line(f, width), self.measured_line(f, width), None,    # None: the scale bar
                 self.theory_note(f, width)]
        if height < 14:      # a short panel keeps the chart at least 6 rows: the note goes, then one readout line
            texts = texts[:3] if height >= 12 else [self.readout(f, width), None]
        chart_h = height - 1 - len(texts)
        ylw = 6
        cw, ch = width - ylw - 1, chart_h - 1
        if cw < 4 or ch < 2:
            return self.message("too small for the plane", width, height)
        xlim, ylim = self.window(f, cw, ch)
        chart = Chart(width, chart_h, xlim=xlim, ylim=ylim, ylabel_width=ylw, digits=3)
        req = PlaneRequest(xlim[0], xlim[1], ylim[0], ylim[1], 2 * cw, 4 * ch)
        rs = f.runner
        plane = rs.plane if rs is not None else None
        if plane is not None and plane[0] == req and plane[1] is not None:
            self.draw_contours(chart, plane[1])
        elif rs is not None and req != self._wanted:
            self._wanted = req
            self.app.post_message(PlaneWanted(req))   # to the app, which asks the runner
        self.draw_marks(chart, f, xlim, ylim, h.previous_ball)
        chart.label(0, 0, "θ₂")
        out += chart.strips()
        for parts in texts:
            out.append(text_strip(parts if parts is not None else self.scale_bar(xlim, cw, width), width))
        return out[:height]
