"""The epsilon-ball: how far the iterates wander around theta*, measured against predicted.

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
from bsim.app.history import FrameBuffer
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.loss import thin
from bsim.app.widgets.panel import Panel, text_strip
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


class BallPanel(Panel):
    TITLE = "ε-ball around θ*"

    def __init__(self, history: FrameBuffer, **kwargs):
        super().__init__(history, **kwargs)
        self._radius = None          # half-width of the plane window (hysteresis)
        self._runs = -1
        self._wanted = None          # the last plane asked for

    # ----------------------------------------------------------- numbers
    def radii(self, f) -> tuple[float | None, float | None]:
        """(measured, predicted) RMS radius, as the statistics computed them."""
        return f.ball_radius, f.ball_radius_theory

    def readout(self, f) -> list:
        meas, pred = self.radii(f)
        ball = f.ball
        parts = [("rms ", "axis")]
        if meas is not None:
            parts += [(num(meas), "green"), (" meas", "axis")]
        elif ball is not None and ball.burn_in_left > 0:
            parts += [(f"settling ({num(ball.burn_in_left)} steps)", "axis")]
        else:
            parts += [("settling…", "axis")]
        if pred is not None:
            parts += [("  ", None), (num(pred), "orange"), (" pred", "axis")]
            if meas is not None and pred > 0:
                parts += [(f"  ×{meas / pred:.2f}", None)]
        return parts

    def theory_note(self, f) -> list:
        ball = f.ball
        meas, pred = self.radii(f)
        if ball is not None and ball.stable is False:
            limit = f" (lr limit {num(ball.lr_limit)})" if ball.lr_limit else ""
            return [(f"unstable: no stationary ball{limit}; lower the lr", "red")]
        if pred is None:
            note = ball.note if ball is not None else ""
            return [(note or "prediction: not yet measured", "axis")]
        kind = "linearised" if f.problem == "logreg" else "exact"
        text = f"pred: iid theory ({kind}) · on: {f.sampling}"
        return [(text, "axis")]

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        if f is None:
            return self.message("starting…", width, height)
        if f.dist_to_opt is None:
            self._title("Spread (no θ*)")
            ball = f.ball
            text = ("no known optimum: the LSTM is non-convex, so there is no θ* to draw a ball around"
                    if f.problem == "lstm" else "no known optimum for this problem")
            if ball is not None and ball.radius_measured is not None:
                text += (f". Measured instead: the iterates' rms spread around their running average is "
                         f"{num(ball.radius_measured)} (over {num(ball.window_steps)} steps).")
            elif ball is not None:
                text += (". The spread around the running average of the iterates: settling "
                         f"({num(ball.burn_in_left)} steps to go).")
            else:
                text += ". The spread around the running average of the iterates: not yet measured."
            return self.message(text, width, height)
        self._title(self.TITLE)
        if len(f.theta) == 2 and f.theta_star is not None:
            return self.build_plane(width, height)
        return self.build_distance(width, height)

    # ----------------------------------------------------------- d > 2
    def build_distance(self, width: int, height: int):
        h, f = self.history, self.history.latest
        data = h.trace.array()
        out = [text_strip([("━ |θ-θ*| ", "blue"), ("┄ predicted ", "orange"), ("┄ measured rms", "green")], width)]
        if len(data) == 0:
            return out + self.message("no step yet", width, height - 1)
        rows = thin(data, 2 * width)
        step, dist = rows[:, 0], rows[:, 7]
        meas, pred = self.radii(f)
        yr = data_range(dist, [pred] if pred else None, [meas] if meas else None, log=True) or (1e-3, 1.0)
        chart = Chart(width, height - 3, xlim=(float(step[0]), float(max(step[-1], step[0] + 1))), ylim=yr, ylog=True)
        if pred:
            chart.hline(pred, "orange")
        if meas:
            chart.hline(meas, "green")
        chart.line(step, dist, "blue")
        out += chart.strips()
        out.append(text_strip(self.readout(f), width))
        out.append(text_strip(self.theory_note(f), width))
        return out[:height]

    # ----------------------------------------------------------- d = 2
    def window(self, f, cw: int, ch: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Plane limits centred on theta*, equal units per dot on both axes, with hysteresis."""
        h = self.history
        if self._runs != h.runs:
            self._runs, self._radius = h.runs, None
        star = np.asarray(f.theta_star, dtype=float)
        pts = np.asarray(list(h.iterates)[-40:] or [f.theta], dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run: need is not finite, handled below
            need = float(np.nanmax(np.linalg.norm(pts - star, axis=1))) * 1.15
        meas, pred = self.radii(f)
        for r in (meas, pred):
            if r:
                need = max(need, 1.6 * r)
        if not math.isfinite(need) or need <= 0:
            need = 1.0
        r = self._radius
        if r is None or need > r or need < r / 3:
            r = self._radius = float(10 ** (math.ceil(math.log10(need) * 8) / 8))  # a few fixed sizes per decade
        dw, dh = 2 * cw, 4 * ch
        u = 2 * r / (min(dw, dh) - 1)
        hx, hy = u * (dw - 1) / 2, u * (dh - 1) / 2
        return (float(star[0] - hx), float(star[0] + hx)), (float(star[1] - hy), float(star[1] + hy))

    def build_plane(self, width: int, height: int):
        h, f = self.history, self.history.latest
        legend = [("+θ* ", "white"), ("· iterates ", "blue"), ("○ pred ", "orange"), ("○ meas ", "green"),
                  ("─ step", "yellow")]
        out = [text_strip(legend, width)]
        chart_h = height - 3
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
            mask = contour_mask(plane[1])
            iy, ix = np.nonzero(mask[::-1, :])   # row 0 of the grid is y0, the bottom
            chart.canvas.dots(ix, iy, "contour")
        elif rs is not None and req != self._wanted:
            self._wanted = req
            self.app.post_message(PlaneWanted(req))   # to the app, which asks the runner
        star = f.theta_star
        pts = np.asarray(list(h.iterates), dtype=float)
        if len(pts):
            chart.points(pts[:, 0], pts[:, 1], "blue")
        meas, pred = self.radii(f)
        if pred:
            chart.circle(star[0], star[1], pred, "orange")
        if meas:
            chart.circle(star[0], star[1], meas, "green")
        if f.theta_prev is not None and len(f.theta_prev) == 2:
            a, b = f.theta_prev, f.theta
            chart.line([a[0], b[0]], [a[1], b[1]], "yellow")
            chart.points([b[0]], [b[1]], "white")
        chart.mark(star[0], star[1], "+", "white")
        out += chart.strips()
        out.append(text_strip(self.readout(f), width))
        out.append(text_strip(self.theory_note(f), width))
        return out[:height]
