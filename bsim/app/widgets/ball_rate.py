"""The ε-ball panel in the interpolation regime: every example fitted, no ball, a linear rate instead.

Least squares with rank X = N <= d (bsim.stats.interpolation): at θ* every batch gradient is 0, so the
predicted ball is the point θ* (radius 0, exact) and E|θ - θ*|^2 falls by a constant factor a step,
``frame.ball.rate`` (exact under iid and replacement sampling; under shuffle the iid rate, labelled so).
The panel draws |θ - θ*| (and the chains' rms) over the steps on a log axis, where a linear rate is a
straight line, with the predicted slope through the latest point (orange), and says the rate, the steps
per e-fold of E|e|^2, the same at every B = 1, 2, 4, ... and N (lr following the lr scaling in force: the
rate per B) and Ma, Bassily & Belkin's critical batch m* = max|x_i|^2 / λ_max(H).
"""

from __future__ import annotations

import math

import numpy as np

from bsim.app.format import num
from bsim.app.widgets.panel import fit, text_strip
from bsim.stats.interpolation import steps_per_efold


def rate_groups(f) -> list:
    """'E|e|² ×0.9933/step (exact (iid)) · e-fold 149 steps', or why there is no rate (unstable)."""
    ball = f.ball
    if ball.rate is None:
        limit = f" (lr limit {num(ball.lr_limit)})" if ball.lr_limit else ""
        return [(0, [("unstable:", "red")]), (1, [(" E|e|² grows", "red")]), (2, [(limit, "red")]),
                (0, [(" lower the lr", "red")])]
    efold = steps_per_efold(ball.rate)
    return [(0, [("E|e|² ×", "axis"), (f"{ball.rate:.4g}", "orange"), ("/step", "axis")]),
            (1, [(f" {ball.rate_label}", "axis")]), (2, [(f" · e-fold {num(efold)} steps" if efold else "", "axis")])]


def ball_groups(f) -> list:
    """'ball 0: every example fitted (exact)' and the measured distance now."""
    return [(0, [("ball ", "axis"), ("0", "orange"), (" exact", "axis")]), (1, [(": every example fitted", "axis")]),
            (2, [("  |θ-θ*| ", "axis"), (num(f.dist_to_opt), "blue")])]


def mstar_groups(f) -> list:
    """Ma, Bassily & Belkin's critical batch beside the batch size in force."""
    m = f.ball.critical_batch
    return [(0, [("m* ", "axis"), (num(m), "purple")]), (2, [(" = max|xᵢ|²/λmax", "axis")]),
            (1, [(" (Ma et al.)", "axis")]), (0, [(f"  B {f.batch_size}", "axis")])]


def per_batch_groups(f, header: str = "e-fold steps by B:") -> list:
    """'e-fold steps by B: 1:149 2:74 4:37 8:18 16:✗': the steps per e-fold of E|e|^2 at each B (lr following
    the lr scaling in force; ✗ where that lr is unstable), the B in force in orange; [] until computed."""
    rates = f.ball.rates
    if not rates:
        return []
    groups = [(0, [(header, "axis")])]
    for b, rate in rates:
        efold = steps_per_efold(rate)
        now = b == f.batch_size
        text = "✗" if efold is None else (f"{efold:.0f}" if efold >= 10 else num(efold, 2))
        groups.append((0 if now else 1, [(f" {b}:", "axis"),
                                         (text, "orange" if now else ("red" if efold is None else None))]))
    return groups


def slope_line(f, since: float, first: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The predicted decay through the latest point, r(t) = r_now rate^((t - t_now) / 2), from the step the
    batch size last changed (``since``; not before the chart's ``first`` step): the chains' rms when there are
    chains, else |θ-θ*|."""
    rate = f.ball.rate
    if rate is None or not 0.0 < rate < 1.0:
        return None
    ens = f.chains_ball_radius if f.chains and f.chains > 1 else None
    anchor = ens if ens is not None and ens > 0 else f.dist_to_opt
    if anchor is None or not math.isfinite(anchor) or anchor <= 0 or f.step <= max(since, first):
        return None
    t = np.linspace(max(since, first), f.step, 32)
    return t, anchor * np.power(rate, (t - f.step) / 2.0)


def build_rate(panel, width: int, height: int) -> list:
    """The panel in the interpolation regime: |θ-θ*| over steps with the predicted slope, then three lines."""
    f = panel.history.latest
    data = panel.history.trace.array()
    legend = [(0, [("━ |θ-θ*| ", "blue")]), (0, [("┄ predicted rate ", "orange")])]
    if f.chains and f.chains > 1:
        legend.append((1, [(f"━ {f.chains} chains rms", "purple")]))
    texts = [fit([rate_groups(f)], width), fit([ball_groups(f)], width), fit([mstar_groups(f)], width)]
    if f.ball.rates:
        texts.insert(1, fit([per_batch_groups(f), per_batch_groups(f, "e-fold@B")], width))
    out = [text_strip(fit([legend], width), width)]
    rows = height - 1 - len(texts)
    if len(data) == 0 or rows < 3:
        out += panel.message("no step yet" if len(data) == 0 else "", width, max(rows, 0))
    else:
        chart = panel.draw_distance(data, f, width, rows)
        changes = panel.history.b_changes
        line = slope_line(f, float(changes[-1][0]) if changes else 0.0, float(data[0, 0]))
        if line is not None:
            chart.line(line[0], line[1], "orange")
        chart.label(0, 0, "|θ-θ*|")
        out += chart.strips()
    return (out + [text_strip(parts, width) for parts in texts])[:height]
