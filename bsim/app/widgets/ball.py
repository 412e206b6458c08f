"""The epsilon-ball: how far the iterates wander around theta*, measured against predicted.

Where it fits, the panel shows the parameter plane (the cloud) beside the ball's law, radius against B on
log-log axes (bsim.app.widgets.ball_law), where a 20x shrink is a slope; ``L`` shows one of them alone.
The plane's scale (bsim.app.widgets.ball_scale) holds across changes of B, lr, momentum and sampling
until the ball in force would be under 3 cells across or over the plane, then zooms with a label; the
trail restarts at each such change, and the previous setting's ball stays as a ring of its own colour.
A scale bar says what a cell is; θ off the chart is pointed at from its edge. With an ensemble (``e``:
chains = K) the chains at the current step are a cloud over the trail, their ball (averaged over the
frames since the last change, as stated) beside the trail's.

Measured and predicted radius come with the frame (``frame.ball``, ``frame.ball_law``, bsim.stats):
measured, sqrt(mean |theta - theta*|^2) over the steps since the settings last changed, after a
burn-in; predicted, sqrt(tr S) of the stationary second moment (exact for iid sampling on least
squares, a linearisation at theta* for logistic regression). More than two parameters draw |θ-θ*|
over time, the LSTM (no θ*) the spread around the iterates' running average.
"""

from __future__ import annotations

import math

import numpy as np
from textual.message import Message
from textual.strip import Strip

from bsim.app.format import num, ratio_text
from bsim.app.history import COL, FrameBuffer
from bsim.app.widgets.ball_law import drawable, law_lines, settled_chains, split_lines
from bsim.app.widgets.ball_rate import build_rate
from bsim.app.widgets.ball_scale import PlaneScale, contour_mask, label_width, offset_axes, plane_window, scale_bar
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.loss import thin
from bsim.app.widgets.panel import Panel, fit, text_strip, wrap
from bsim.controls import PlaneRequest

#: the panel's pictures, in the order L cycles them ("both": the plane and the law side by side)
VIEWS = ("both", "law", "plane")
#: the plane and the law side by side from this inner width (narrower: one of them, L swaps)
SPLIT_WIDTH = 34
#: the logistic ball's linearisation as measured on one named scenario (bsim.stats.ball.LINEARISED_BIAS: the logreg
#: scenario, data seed 2027; another data set gave 0.7/3.2/9.4%), longest first; with chains their ratio replaces it
LOGREG_VALIDITY = ("on logreg seed 2027: 3/13/31% low at 0.05/0.2/0.5× limit; e: measure here",
                   "3-31% low on logreg seed 2027 (0.05-0.5× limit)", "3-31% low on one data set")
LOGREG_CHAINS = ("linearised: the chains' ratio above is its measured error", "chains' ratio: its measured error")


class PlaneWanted(Message):
    """The panel needs the loss on this grid of the parameter plane."""

    def __init__(self, request: PlaneRequest):
        super().__init__()
        self.request = request


#: why the trail's spread and the chains' differ (the LSTM: no θ*), longest first: the first that wraps in 2 lines
SPREAD_NOTES = (
    ("trail: one run's iterates around their running average, over a window of steps; chains: across the "
     "chains around their mean, at one step"),
    "trail: one run around its running average over time; K: across chains around their mean, now",
    "trail: one run around its average over time; K: across chains, now",
    "trail: a run over time; K: across chains now",
)
SPREAD_NOTE_ALONE = "trail: one run's iterates around their running average (no known optimum)"


def spread_note(chains: bool, width: int) -> list[str]:
    """The note under the LSTM's spread, in at most two whole-word lines of ``width``."""
    for text in (SPREAD_NOTES if chains else (SPREAD_NOTE_ALONE, "around the run's running average")):
        lines = wrap(text, width)
        if len(lines) <= 2:
            return lines
    return wrap(text, width)[:2]


def reshuffled_note(ball) -> list[str]:
    """What the reshuffled prediction is, longest first: computed over sampled permutations (the analytic
    approximation's distance from it beside), or the approximation itself; above the iid limit, that it holds."""
    if ball.kind != "reshuffled" or ball.radius_theory is None:
        return ["reshuffled (approx.): additive model x iid correction", "each example once an epoch"]
    texts = ["reshuffled: epoch maps over sampled permutations", "each example once an epoch"]
    if ball.radius_approx and ball.radius_theory > 0:
        texts.insert(0, f"{texts[0]}; analytic approx. {ball.radius_approx / ball.radius_theory - 1:+.1%}")
    if ball.lr_limit_iid is not None and ball.limit_fraction is not None and ball.lr_limit is not None \
            and ball.stable and ball.limit_fraction * ball.lr_limit > ball.lr_limit_iid:
        texts.insert(0, f"above the iid lr limit {num(ball.lr_limit_iid)}: stable under shuffle "
                        f"(limit {num(ball.lr_limit)})")
    return texts


class BallPanel(Panel):
    """The ε-ball: the trail of iterates, the ensemble's cloud, the predicted ring (labelled by its kind, the
    iid prediction beside a reshuffled one) and the measured rings around θ*; two parameters draw the plane
    with loss contours, more draw |θ - θ*| over time, the LSTM its spread over time.

    Owns: the plane's scale (PlaneScale) and which pictures it shows (``view``). Reads: frame.ball,
    frame.ball_law, the ball columns, chains_theta, the FrameBuffer's trail and previous ring, and the loss
    grid the runner answers (PlaneRequest). Computes no prediction.
    """

    TITLE = "ε-ball around θ*"

    def __init__(self, history: FrameBuffer, **kwargs):
        super().__init__(history, **kwargs)
        self.scale = PlaneScale()
        self.view = VIEWS[0]
        self._wanted = None          # the last plane asked for

    def refit(self) -> None:
        """Fit the scale again to the ball in force (z)."""
        self.scale.refit()
        self._key = None
        self.restyle()

    def cycle_view(self) -> str:
        """L: the plane and the law side by side, the law alone, the plane alone (narrow: law and plane)."""
        order = VIEWS if self.size.width >= SPLIT_WIDTH else VIEWS[1:]
        now = self.view if self.view in order else "plane"
        self.view = order[(order.index(now) + 1) % len(order)]
        self._key = None
        self.restyle()
        return {"both": "ε-ball: plane and law side by side", "law": "ε-ball: the law, radius against B",
                "plane": "ε-ball: the parameter plane"}[self.view] + " (L: next)"

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
            if ball.lr_limit_iid is not None:     # shuffle: the shuffled limit, the iid one beside it
                limit = (f" (lr limit {num(ball.lr_limit)} shuffled, {num(ball.lr_limit_iid)} iid)" if ball.lr_limit
                         else f" (iid lr limit {num(ball.lr_limit_iid)})")
            return [(0, [("unstable:", "red")]), (1, [(" no stationary ball", "red")]), (2, [(limit, "red")]),
                    (0, [(" lower the lr", "red")])]
        if pred is None:
            note = ball.note if ball is not None else ""
            return [(0, [("pred ", "axis"), ("—", "orange")]), (1, [(" " + (note or "not yet known"), "axis")])]
        kind = ball.kind if ball is not None else "exact"
        groups = [(0, [("pred ", "axis"), (num(pred), "orange")]), (1, [(f" {kind}", "axis")])]
        if ball is not None and kind == "linearised" and ball.limit_fraction is not None:
            groups.append((3, [(f" at {ball.limit_fraction:.2g}× lr limit", "axis")]))
        if ball is not None and ball.holds_from is not None:    # B changed mid-epoch: reached about a step later
            step = ball.settles_at if ball.settles_at is not None else ball.holds_from
            groups.append((0, [(f" ≈ at step {step:,}", "orange")]))
        if ball is not None and kind == "reshuffled" and ball.radius_theory_se is not None:   # computed numerically
            se = f" ±{ball.radius_theory_se / pred:.1%}" if pred > 0 else ""
            groups.append((1, [(f" sampled{se}", "axis")]))
        if ball is not None and ball.radius_iid is not None and kind.startswith("reshuffled"):
            groups.append((2, [("  iid ", "axis"), (num(ball.radius_iid), "orange")]))
        if f.momentum:
            groups.append((1, [(f"  m={f.momentum:g}", "axis")]))
        return groups

    def measured_groups(self, f, trail: bool = True) -> list:
        """The trail's and the chains' measured ball, each with its ratio to the prediction ± its standard error
        ("settling" until it has one); the chains' is their time average over the frames since the last change
        until the epoch-averaged measure of frame.ball_law has a standard error.

        ``trail`` False leaves out the word "trail" and the spaces around "±" (for a narrow panel).
        """
        h, ball = self.history, f.ball

        def ratio(measured, se):
            text = ratio_text(measured, se, pred)
            return text if trail else text.replace(" ± ", "±")
        meas, pred = self.radii(f)
        epoch = settled_chains(f)
        if meas is not None:
            groups = [(0, [("meas ", "axis")] + ([("trail ", "axis")] if trail else []) + [(num(meas), "green")])]
            if pred:    # beside the chains' settled ratio (the more precise) the trail's goes first
                groups.append((2 if epoch is not None else 1,
                               [(ratio(meas, ball.radius_se if ball is not None else None), None)]))
        elif ball is not None and ball.burn_in_left > 0:
            groups = [(0, [("meas ", "axis"), ("settling", "axis")]),
                      (1, [(f" ({num(ball.burn_in_left)} steps)", "axis")])]
        else:
            groups = [(0, [("meas ", "axis"), ("settling…", "axis")])]
        if f.chains and f.chains > 1:
            avg = h.chains_ball
            if epoch is not None:
                groups.append((1, [(f"  K={f.chains} ", "axis"), (num(epoch.radius), "purple")]))
                if pred:
                    groups.append((1, [(ratio(epoch.radius, epoch.se), None)]))
                groups.append((3, [(" (epochs)", "axis")]))
            elif avg is not None:
                r, n = avg
                groups.append((1, [(f"  K={f.chains} ", "axis"), (num(r), "purple")]))
                if pred:
                    groups.append((2, [(ratio(r, None), None)]))
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
        elif ball is not None and ball.kind == "linearised":     # the live ensemble's ratio, else one scenario's
            texts = [(t, "axis") for t in (LOGREG_CHAINS if f.chains and f.chains > 1 else LOGREG_VALIDITY)]
        elif ball is not None and ball.kind.startswith("reshuffled"):
            texts = [(t, "axis") for t in reshuffled_note(ball)]
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
        if f.ball is not None and f.ball.critical_batch is not None:   # interpolation: no ball, a rate
            return build_rate(self, width, height)
        view = self.view if drawable(f.ball_law) else "plane"
        if view == "both" and width < SPLIT_WIDTH:
            view = "plane"
        if view != "plane":     # the ball's law alone, or beside the plane (bsim.app.widgets.ball_law)
            return (law_lines if view == "law" else split_lines)(self, f, width, height)
        if len(f.theta) == 2 and f.theta_star is not None:
            return self.build_plane(width, height)
        return self.build_distance(width, height)

    # ----------------------------------------------------------- no theta* (LSTM)
    def build_spread(self, width: int, height: int):
        """The spread of the iterates around their running average over steps (no θ* to draw a ball around)."""
        h, f = self.history, self.history.latest
        legend = [(0, [("━ trail ", "green")])] + ([(0, [("━ chains ", "purple")])] if f.chains and f.chains > 1 else [])
        out = [text_strip(fit([legend + [(1, [("rms spread, no θ*", "axis")])], legend + [(1, [("no θ*", "axis")])]],
                              width), width)]
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
        note = spread_note(bool(f.chains and f.chains > 1), width)
        yr = data_range(series, log=True) or (1e-3, 1.0)
        chart = Chart(width, height - 2 - len(note), xlim=(float(step[0]), float(max(step[-1], step[0] + 1))),
                      ylim=yr, ylog=True)
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
        out += [text_strip([(line, "axis")], width) for line in note]
        return out[:height]

    # ----------------------------------------------------------- d > 2
    def build_distance(self, width: int, height: int):
        f = self.history.latest
        out = [text_strip([("━ |θ-θ*| ", "blue"), ("┄ predicted ", "orange"), ("┄ measured rms", "green")], width)]
        out += self.distance_body(f, width, height - 4)
        out.append(text_strip(self.prediction_line(f, width), width))
        out.append(text_strip(self.measured_line(f, width), width))
        out.append(text_strip(self.theory_note(f, width), width))
        return out[:height]

    def distance_body(self, f, width: int, rows: int) -> list[Strip]:
        """|θ-θ*| over the steps (draw_distance), or why there is nothing to draw, in ``rows`` lines."""
        data = self.history.trace.array()
        if len(data) == 0:
            return self.message("no step yet", width, rows)
        chart = self.draw_distance(data, f, width, rows)
        chart.label(0, 0, "|θ-θ*|")
        return chart.strips()

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
        """The largest ball known now (predicted, the trail's, the chains'): what the scale is first fitted to."""
        meas, pred = self.radii(f)
        known = [r for r in (pred, meas, f.chains_ball_radius) if r is not None and math.isfinite(r) and r > 0]
        ball = f.ball
        if ball is not None and ball.stable is False:
            return None
        return max(known) if known else None

    def ball_in_force(self, f) -> float | None:
        """The ball of the setting in force: its prediction (known at once after a change), else its measure."""
        if f.ball is not None and f.ball.stable is False:
            return None
        meas, pred = self.radii(f)
        return next((r for r in (pred, meas) if r is not None and math.isfinite(r) and r > 0), None)

    def window(self, f, cw: int, ch: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Plane limits centred on theta*, equal units per dot on both axes (the scale: PlaneScale)."""
        star = np.asarray(f.theta_star, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            distance = float(np.linalg.norm(np.asarray(f.theta, dtype=float) - star))
        previous = self.history.previous_ball
        r = self.scale.update(self.ball_size(f), self.ball_in_force(f), distance, cw, ch, self.history.runs,
                              previous[0] if previous is not None else None)
        return plane_window(star, r, cw, ch)

    def off_chart(self, chart: Chart, xlim, ylim, f) -> None:
        """An arrow at the edge toward θ when it is off the chart, and how far it is (as much as fits)."""
        x, y = f.theta
        if not (math.isfinite(x) and math.isfinite(y)) or (xlim[0] <= x <= xlim[1] and ylim[0] <= y <= ylim[1]):
            return
        cx, cy = (xlim[0] + xlim[1]) / 2, (ylim[0] + ylim[1]) / 2
        dx, dy = x - cx, y - cy
        arrows = "→↗↑↖←↙↓↘"
        arrow = arrows[int(round(math.atan2(dy, dx) / (math.pi / 4))) % 8]
        t = min((xlim[1] - cx) / abs(dx) if dx else math.inf, (ylim[1] - cy) / abs(dy) if dy else math.inf)
        ex, ey = cx + dx * t * 0.97, cy + dy * t * 0.97
        chart.mark(ex, ey, arrow, "yellow")
        far = num(f.dist_to_opt)
        texts = (f"θ off chart: |θ-θ*| {far} (z: fit)", f"θ off: |θ-θ*| {far}", f"θ off {far}", "θ off")
        chart.label(chart.canvas.h - 1, 0, next((t for t in texts if len(t) <= chart.canvas.w), ""), "yellow")

    @staticmethod
    def draw_contours(chart: Chart, grid) -> None:
        """The loss's contour lines from the runner's grid of values (its row 0 is y0, the chart's bottom)."""
        iy, ix = np.nonzero(contour_mask(grid)[::-1, :])
        chart.canvas.dots(ix, iy, "contour")

    def draw_marks(self, chart: Chart, f, xlim, ylim, previous_ball=None) -> None:
        """Over the plane: the trail of iterates, the chains' cloud, the rings (the previous setting's ball in
        its own colour, then predicted, measured and the chains'), the last step, θ* and the arrow toward θ."""
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
            chart.circle(star[0], star[1], previous_ball[0], "pink")
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

    def plane_legend(self, f, width: int) -> list:
        """What the plane's marks are; a narrow plane keeps the rings first."""
        h = self.history
        groups = [(3, [("+θ* ", "white")]), (2, [("· trail ", "blue")]), (0, [("○ pred ", "orange")]),
                  (0, [("○ meas ", "green")])]
        if f.chains and f.chains > 1:
            groups.append((1, [(f"∴ {f.chains} chains ", "purple")]))
        if h.previous_ball is not None:
            groups.append((1, [(f"○ {h.previous_ball[1]} ", "pink")]))
        groups.append((3, [("─ step", "yellow")]))
        short = [(rank, [(text.replace(" chains", "").replace("○ ", "○").replace("· ", "·"), color)
                         for text, color in parts]) for rank, parts in groups]
        return fit([groups, short], width)

    def plane_body(self, f, width: int, rows: int) -> list[Strip]:
        """The plane (contours when the runner sent them, trail, cloud, rings, step, θ*) on axes labelled by
        the offset from θ*, then its scale bar with the zoom: ``rows`` lines."""
        ch = rows - 2                       # the x axis's row and the scale bar's
        ylw = label_width(self.scale.radius)
        if width - ylw - 1 < 4 or ch < 2:
            return self.message("too small for the plane", width, rows)
        xlim, ylim = self.window(f, width - ylw - 1, ch)
        if label_width(self.scale.radius) != ylw:       # the zoom changed the labels' width
            ylw = label_width(self.scale.radius)
            xlim, ylim = self.window(f, width - ylw - 1, ch)
        cw = width - ylw - 1
        chart = Chart(width, ch + 1, xlim=xlim, ylim=ylim, ylabel_width=ylw, xends=False)
        offset_axes(chart, f.theta_star, self.scale.radius)
        req = PlaneRequest(xlim[0], xlim[1], ylim[0], ylim[1], 2 * cw, 4 * ch)
        rs = f.runner
        plane = rs.plane if rs is not None else None
        if plane is not None and plane[0] == req and plane[1] is not None:
            self.draw_contours(chart, plane[1])
        elif rs is not None and req != self._wanted:
            self._wanted = req
            self.app.post_message(PlaneWanted(req))   # to the app, which asks the runner
        self.draw_marks(chart, f, xlim, ylim, self.history.previous_ball)
        chart.label(0, 0, "θ₂")
        return chart.strips() + [text_strip(scale_bar(xlim, cw, width, self.scale.zoom_text()), width)]

    def build_plane(self, width: int, height: int):
        f = self.history.latest
        texts = [self.prediction_line(f, width), self.measured_line(f, width), self.theory_note(f, width)]
        if height < 14:      # a short panel keeps the chart at least 6 rows: the note goes, then one readout line
            texts = texts[:2] if height >= 12 else [self.readout(f, width)]
        out = [text_strip(self.plane_legend(f, width), width)]
        out += self.plane_body(f, width, height - 1 - len(texts))
        return (out + [text_strip(parts, width) for parts in texts])[:height]
