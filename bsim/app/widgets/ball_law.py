"""The ball's law: the ε-ball's radius against batch size on log-log axes, like the variance's 1/B law.

A 20x shrink of the ball is a sub-cell dot on one linear scale; on log-log axes it is a slope.
Everything drawn comes with the frame (``frame.ball_law``, bsim.stats.ball_law): the predicted radius
at B = 1, 2, 4, ... for the sampling in force, lr following the lr scaling in force (orange), the other
sampling's prediction (grey, faint), and at each setting visited on that curve (same sampling and
momentum, its own prediction on the curve) the measured radius with ±2 standard errors: the run's trail
(green ●) and the ensemble, epoch-averaged (purple ◆; drawn over the trail's where both fall in one
cell). The batch size in force is a dotted blue line.

The shrink between the smallest and the largest B visited on the curve is r(B_min) / r(B_max), measured
(each end by its most precise measurement, the trail's or the ensemble's) and predicted; the measured
ratio's standard error is the delta method's for two independent measurements, se = ratio sqrt((se_1 / r_1)^2 + (se_2 / r_2)^2). It reads "settling" until both radii
have a standard error (enough independent samples behind them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from textual.strip import Strip

from bsim.app.format import num
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.panel import fit, text_strip

#: a visited setting is on the curve when its own prediction is within this fraction of the curve's
ON_CURVE = 0.02
#: the chart spans at least this factor of batch sizes around those visited
MIN_SPAN = 16


@dataclass(frozen=True)
class Shrink:
    """r(B_min) / r(B_max) between the smallest and the largest batch size visited on the curve."""

    b_small: int
    b_large: int
    predicted: float | None
    measured: float | None      # None: settling
    se: float | None
    source: str                 # "trail", "K=64" or "trail/K=64": which measurements the ratio is of


def settled_chains(f):
    """The ensemble's epoch-averaged RadiusMeasure at the setting in force once it has a standard error; None."""
    point = next((p for p in f.ball_law.points if p.current), None) if f.ball_law and (f.chains or 0) > 1 else None
    return point.chains if point is not None and point.chains is not None and point.chains.se else None


def drawable(law) -> bool:
    """Whether the law has anything to draw: a predicted radius or a measured one (not while unstable)."""
    return law is not None and (any(r for r in law.curve)
                                or any(p.trail is not None or p.chains is not None for p in law.points))


def curve_at(law, batch_size: float) -> float | None:
    """The predicted curve at ``batch_size``, interpolated on log-log axes between its batch sizes."""
    pts = [(b, r) for b, r in zip(law.curve_batch_sizes, law.curve) if r is not None and r > 0]
    if not pts:
        return None
    bs, rs = np.log(np.array(pts, dtype=float)).T
    x = math.log(batch_size)
    if x < bs[0] - 1e-9 or x > bs[-1] + 1e-9:
        return None
    return float(np.exp(np.interp(x, bs, rs)))


def on_curve(law) -> list:
    """The visited settings the curve describes: the sampling and momentum in force, their own prediction on
    the curve (lr as the scaling in force would have it), the setting in force first among equals."""
    now = next((p for p in law.points if p.current), None)
    if now is None:
        return []
    out = []
    for p in law.points:
        if p.sampling != now.sampling or p.momentum != now.momentum or not p.theory:
            continue
        c = curve_at(law, p.batch_size)
        if p.current or (c is not None and abs(p.theory / c - 1) <= ON_CURVE):
            out.append(p)
    return out


def best(p, chains: int | None) -> tuple[str, object] | None:
    """A point's most precise measurement with a standard error, else any measured one: (source, measure)."""
    found = [(f"K={chains}" if name == "chains" else name, m) for name, m in (("trail", p.trail), ("chains", p.chains))
             if m is not None and m.radius > 0]
    if not found:
        return None
    return min(found, key=lambda sm: (sm[1].se is None, (sm[1].se or 0) / sm[1].radius))


def shrink(law, chains: int | None) -> Shrink | None:
    """The shrink between the smallest and the largest B visited on the curve (None below two batch sizes).

    Each end takes its most precise measurement (the trail's or the ensemble's: both measure the same
    stationary radius, independently); the source says which ("trail", "K=64", or "trail/K=64").
    """
    pts = on_curve(law)
    if len({p.batch_size for p in pts}) < 2:
        return None
    small = min(pts, key=lambda p: (p.batch_size, not p.current))
    large = max(pts, key=lambda p: (p.batch_size, p.current))
    pred = small.theory / large.theory if small.theory and large.theory else None
    a, b = best(small, chains), best(large, chains)
    if a is None or b is None:
        return Shrink(small.batch_size, large.batch_size, pred, None, None, "")
    source = a[0] if a[0] == b[0] else f"{a[0]}/{b[0]}"
    (ra, sa), (rb, sb) = (a[1].radius, a[1].se), (b[1].radius, b[1].se)
    if sa is None or sb is None:
        return Shrink(small.batch_size, large.batch_size, pred, None, None, source)
    ratio = ra / rb
    se = ratio * math.hypot(sa / ra, sb / rb)       # the delta method, two independent measurements
    return Shrink(small.batch_size, large.batch_size, pred, ratio, se, source)


def shrink_line(s: Shrink | None, kind: str, width: int) -> list:
    """"shrink B 8→256: ×4.6 ± 0.3 (se) measured (K=64), ×4.8 predicted (reshuffled)", as much as fits."""
    if s is None:
        return fit([[(0, [("shrink: ", "axis"), ("one B so far", "axis")]), (1, [(" ([ ] change it)", "axis")])]],
                   width)
    head = (0, [(f"shrink B {s.b_small}→{s.b_large}: ", "axis")])
    short_head = (0, [(f"B {s.b_small}→{s.b_large} ", "axis")])
    pred = f"×{num(s.predicted, 2)}" if s.predicted else "—"
    if s.measured is None:
        meas_long = [(0, [("settling", "axis")])]
        meas_short = meas_long
    else:
        value = f"×{num(s.measured, 2)} ± {num(s.se, 1)}"
        meas_long = [(0, [(value, "green")]), (2, [(" (se)", "axis")]), (0, [(" measured", "axis")]),
                     (1, [(f" ({s.source})", "axis")])]
        meas_short = [(0, [(value.replace(" ", ""), "green"), (" meas", "axis")])]
    pred_long = [(0, [(", ", "axis"), (pred, "orange"), (" predicted", "axis")]), (1, [(f" ({kind})", "axis")])]
    pred_short = [(0, [(", pred ", "axis"), (pred, "orange")])]
    return fit([[head] + meas_long + pred_long, [head] + meas_short + pred_short,
                [short_head] + meas_short + pred_short], width)


def law_legend(law, chains: int | None, width: int) -> list:
    """The chart's legend: the curve in force by its kind, the points, the other curve, the B in force."""
    ensemble = any(p.chains is not None for p in law.points) or bool(chains and chains > 1)
    name = f"K={chains}" if chains and chains > 1 else "chains"
    wordings = []
    for curve, sep in ((law.curve_kind, " "), ("pred", " "), ("pred", "")):
        groups = ([(0, [(f"━{sep}{curve}", "orange")])] if any(r for r in law.curve) else []) + [
            (0, [(f" ●{sep}trail", "green")])]
        if ensemble:
            groups.append((0, [(f" ◆{sep}{name}", "purple")]))
        if any(r for r in law.other_curve):
            groups.append((2, [(f" ━{sep}{law.other_kind}", "grey")]))
        groups.append((3, [(" ┆B", "blue")]))
        wordings.append(groups)
    # the narrowest: the points first, the curve's name where it fits
    wordings.append([(0, [("●trail", "green")])] + ([(0, [(f" ◆{name}", "purple")])] if ensemble else [])
                    + [(1, [(" ━pred", "orange")])])
    return fit(wordings, width)


def x_range(law, points, n_train: int) -> tuple[float, float]:
    """Batch sizes shown: those visited, padded by 2 each side, at least MIN_SPAN wide, within 1 .. N."""
    bs = [p.batch_size for p in points] or [1]
    lo, hi = min(bs) / 2, max(bs) * 2
    while hi / lo < MIN_SPAN:
        lo, hi = lo / 2, hi * 2
    top = max(n_train, 2)
    lo, hi = max(lo, 1.0), min(hi, float(top))
    if hi / lo < MIN_SPAN:      # against an end: widen on the other side
        lo, hi = max(hi / MIN_SPAN, 1.0), min(lo * MIN_SPAN, float(top))
    return lo, hi


def law_chart(law, width: int, rows: int, n_train: int, b_now: int) -> Chart:
    """Radius against B, log-log: the curves, the points on the curve with ±2 se bars, the B in force."""
    points = on_curve(law)
    xlim = x_range(law, points, n_train)
    bs = np.asarray(law.curve_batch_sizes, dtype=float)
    curve = np.array([np.nan if r is None else r for r in law.curve], dtype=float)
    other = np.array([np.nan if r is None else r for r in law.other_curve], dtype=float)
    shown = (bs >= xlim[0]) & (bs <= xlim[1])
    measured = [m for p in points for m in (p.trail, p.chains) if m is not None]
    bars = [v for m in measured for v in (m.radius - 2 * (m.se or 0), m.radius, m.radius + 2 * (m.se or 0))]
    ylim = data_range(curve[shown] if shown.any() else None, bars, [p.theory for p in points], log=True,
                      pad=0.08) or (1e-3, 1.0)
    chart = Chart(width, rows, xlim=xlim, ylim=ylim, xlog=True, ylog=True)
    chart.xlabels = [(float(b), str(b)) for b in sorted({p.batch_size for p in points})]
    chart.label(0, -1, "radius, log")
    chart.label(chart.canvas.h - 1, 0, "B →")
    chart.vline(float(b_now), "blue")
    if other.size == bs.size and np.isfinite(other).any():
        chart.line(bs, other, "grey")
    if np.isfinite(curve).any():
        chart.line(bs, curve, "orange")
    for attr, color in (("trail", "green"), ("chains", "purple")):
        for p in points:
            m = getattr(p, attr)
            if m is not None and m.se:
                chart.line([p.batch_size] * 2, [max(m.radius - 2 * m.se, m.radius * 1e-3), m.radius + 2 * m.se],
                           color)
    for attr, mark, color in (("trail", "●", "green"), ("chains", "◆", "purple")):
        for p in points:
            m = getattr(p, attr)
            if m is not None:
                chart.mark(p.batch_size, m.radius, mark, color)
    return chart


# ----------------------------------------------------------- the ε-ball panel's layouts with the law
def law_texts(f, width: int) -> list:
    """Under the law: the shrink between the smallest and largest B visited, measured against predicted."""
    return [shrink_line(shrink(f.ball_law, f.chains), f.ball_law.curve_kind, width)]


def law_lines(panel, f, width: int, height: int) -> list[Strip]:
    """The ball's law alone (the ε-ball panel's L), with the shrink and the readout of the setting in force."""
    texts = law_texts(f, width) + [panel.readout(f, width)]
    out = [text_strip(law_legend(f.ball_law, f.chains, width), width)]
    out += law_chart(f.ball_law, width, height - 1 - len(texts), f.n_train, f.next_batch_size).strips()
    return (out + [text_strip(parts, width) for parts in texts])[:height]


def split_lines(panel, f, width: int, height: int) -> list[Strip]:
    """The ε-ball panel's plane (|θ-θ*| for d > 2) on the left, the ball's law on the right, the readouts
    (``panel``'s prediction and measured lines) and the shrink under both."""
    texts = ([panel.prediction_line(f, width), panel.measured_line(f, width)] if height >= 14
             else [panel.readout(f, width)]) + law_texts(f, width)
    rows = height - 1 - len(texts)
    law_w = width // 2
    left_w = width - law_w - 1
    plane = len(f.theta) == 2 and f.theta_star is not None
    left_legend = (panel.plane_legend(f, left_w) if plane
                   else fit([[(0, [("━ |θ-θ*| ", "blue")]), (1, [("┄ pred ", "orange")])]], left_w))
    left = panel.plane_body(f, left_w, rows) if plane else panel.distance_body(f, left_w, rows)
    right = law_chart(f.ball_law, law_w, rows, f.n_train, f.next_batch_size).strips()
    gap, blank_l, blank_r = Strip.blank(1), Strip.blank(left_w), Strip.blank(law_w)
    out = [Strip.join([text_strip(left_legend, left_w), gap,
                       text_strip(law_legend(f.ball_law, f.chains, law_w), law_w)])]
    for k in range(rows):
        out.append(Strip.join([left[k] if k < len(left) else blank_l, gap, right[k] if k < len(right) else blank_r]))
    return (out + [text_strip(parts, width) for parts in texts])[:height]
