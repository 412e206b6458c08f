"""Terminal pictures of a sweep (plotext): the trade-off and the learning curves.

1. Steps S and examples E to reach the target against B, log-log, every
   task a point, the fit S = S_min + E_min/B and E = E_min + S_min B drawn,
   the regimes marked: perfect scaling for B < B_crit/4 (E within 25% of
   E_min), diminishing returns between, maximal data parallelism for
   B > 4 B_crit (S within 25% of S_min).
   Least squares that interpolates (d >= N): Ma, Bassily & Belkin's
   m* = max|x_i|^2 / lambda_max(H) marked too (bsim.stats.interpolation).
2. One learning curve per batch size (the kept lr, the first seed): train
   loss and test loss against steps, side by side, the target drawn.
3. Under a tuned lr, the best lr against B, log-log, with McCandlish et al.'s
   lr_max/(1 + B_noise/B) fitted (bsim.sweep.bestlr).
The same figures draw into textual-plotext widgets (``draw_*`` take any
object with plotext's API), so the app's sweep screen shows them too.
"""

from __future__ import annotations

import math

import numpy as np
import plotext

from bsim.sweep.analysis import Summary
from bsim.sweep.state import finite

REGIME = 4.0   # the regime boundaries: B_crit / 4 and 4 B_crit

REGIMES_CAPTION = ("a dot per task, the line the fit; regimes: perfect scaling B < B_crit/4 (E within 25% of E_min) | diminishing returns | "
                   "maximal data parallelism B > 4 B_crit (S within 25% of S_min)")


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of 2 (or 10 when the range is wide) covering [lo, hi]."""
    base = 2 if hi / max(lo, 1e-300) <= 2 ** 12 else 10
    a, b = math.floor(math.log(lo, base)), math.ceil(math.log(hi, base))
    step = max(1, math.ceil((b - a) / 6))
    return [float(base) ** k for k in range(a, b + 1, step)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 1 and abs(v - round(v)) < 1e-9 else f"{v:.3g}"


def _set_xticks(plt, lo, hi):
    ticks = _log_ticks(lo, hi)
    plt.xticks(ticks, [_fmt(t) for t in ticks])


LABEL_ROWS = 2   # a mark's label goes on the top text row, or one row below when that is taken; else it is dropped


def place_labels(marks: list[tuple[str, float, str]], lo: float, hi: float, columns: int,
                 rows: int = LABEL_ROWS) -> list[tuple[str, float, str, int]]:
    """Text rows for the marks' labels so that none overlaps another (a blank column between two).

    ``marks``: (label, x, alignment 'left'|'center'|'right') in priority order, x on a log axis from
    ``lo`` to ``hi`` drawn over ``columns`` characters. Each label takes the first row (0 = top) where
    it fits; a label that fits on no row is dropped; a centred label that would cross the frame is
    aligned to end (or start) at its x instead. Returns (label, x, alignment, row)."""
    span = max(math.log(hi / lo), 1e-12)
    taken: list[tuple[int, int, int]] = []          # (row, first column, last column)
    placed = []
    for label, x, align in marks:
        col = math.log(x / lo) / span * max(columns - 1, 1)
        if align == "center" and col + len(label) / 2 > columns - 1:
            align = "right"                        # keep it inside the frame: it ends at x
        elif align == "center" and col - len(label) / 2 < 0:
            align = "left"
        first = {"left": col, "center": col - len(label) / 2, "right": col - len(label) + 1}[align]
        a, b = math.floor(first), math.ceil(first + len(label) - 1)
        for row in range(rows):
            if all(r != row or b + 1 < a0 or a - 1 > b0 for r, a0, b0 in taken):
                taken.append((row, a, b))
                placed.append((label, x, align, row))
                break
    return placed


def draw_tradeoff(plt, summary: Summary, which: str, width: int = 60, height: int = 20) -> None:
    """One panel: steps (which='steps') or examples ('samples') against B.

    ``width`` x ``height``: the panel's size in characters, to keep the marks' labels apart."""
    pts_b, pts_v = [], []
    for pb in summary.per_b:
        vals = pb.steps if which == "steps" else pb.samples
        pts_b += [pb.batch_size] * len(vals)
        pts_v += [float(v) for v in vals]
    plt.xscale("log")
    plt.yscale("log")
    plt.title(("steps S" if which == "steps" else "examples E") + " to the target")
    plt.xlabel("batch size B")
    if not pts_b:
        plt.text("no task reached the target", 1, 1)
        return
    bs = [pb.batch_size for pb in summary.per_b]
    lo, hi = min(bs), max(bs)
    plt.scatter(pts_b, pts_v, marker="dot")
    f = summary.fit
    ymin, ymax = min(pts_v), max(pts_v)
    if f.ok:
        grid = np.geomspace(lo, hi, 60)
        curve = f.steps_at(grid) if which == "steps" else f.examples_at(grid)
        plt.plot(grid.tolist(), curve.tolist(), marker="braille")
        floor = f.s_min if which == "steps" else f.e_min
        ymin, ymax = min(ymin, float(curve.min()), floor), max(ymax, float(curve.max()))
        plt.hline(floor)
        for x in (f.b_crit / REGIME, f.b_crit, f.b_crit * REGIME):
            if lo <= x <= hi:
                plt.vline(x)
        marks = [(f"B_crit={f.b_crit:.3g}", f.b_crit, "center")]
        if lo < f.b_crit / REGIME:
            marks.append(("perfect scaling", lo, "left"))
        if hi > f.b_crit * REGIME:
            marks.append(("max parallel", hi, "right"))
        for name, value in (("B_noise", summary.b_noise), ("B_simple", summary.b_simple), ("m*", summary.m_star)):
            if value is not None and finite(value):
                marks.append((f"{name}={value:.3g}", value, "center"))
        marks = [m for m in marks if lo <= m[1] <= hi]
        # plotext: the y-tick labels and frame take ~10 columns, the title, frame, ticks and xlabel ~6 rows
        columns, plot_rows = max(width - 10, 10), max(height - 6, 3)
        row_step = (math.log(ymax) - math.log(ymin)) / max(plot_rows - 1, 1) if ymax > ymin > 0 else 0.0
        for label, x, align, row in place_labels(marks, lo, hi, columns):
            plt.text(label, x, ymax * math.exp(-row * row_step), alignment=align)
    if summary.m_star is not None and lo <= summary.m_star <= hi:    # interpolation: Ma et al.'s critical batch
        plt.vline(summary.m_star)
        if not f.ok:                      # with a fit its label is placed among the others above
            plt.text(f"m*={summary.m_star:.3g}", summary.m_star, ymax, alignment="center")
    _set_xticks(plt, lo, hi)


def draw_best_lr(plt, summary: Summary, width: int = 60, height: int = 20) -> None:
    """One panel (tuned sweeps): the best lr against B, log-log, with McCandlish et al.'s
    lr_max/(1 + B_noise/B) at the measured B_noise and at the knee that fits best (bsim.sweep.bestlr)."""
    plt.xscale("log")
    plt.yscale("log")
    plt.title("best lr against B")
    plt.xlabel("batch size B")
    law = summary.best_lr()
    if law is None:
        plt.text("no best lr: the lr rule is not tuned, or fewer than 3 batch sizes reached the target", 1, 1)
        return
    bs = [b for b, _ in law.points]
    lrs = [lr for _, lr in law.points]
    lo, hi = min(bs), max(bs)
    grid = np.geomspace(lo, hi, 60)
    ys = list(lrs)
    for fit, name in ((law.measured, "B_noise measured"), (law.free, "knee fitted")):
        if fit is not None:
            curve = fit.at(grid)
            plt.plot(grid.tolist(), curve.tolist(), marker="braille", label=f"lr_max/(1+{fit.knee:.3g}/B), {name}")
            ys += curve.tolist()
    plt.scatter(bs, lrs, marker="●", label="best lr (measured)")     # over the lines
    f = summary.fit
    if f.ok and lo <= f.b_crit <= hi:
        plt.vline(f.b_crit)
        plt.text(f"B_crit={f.b_crit:.3g}", f.b_crit, max(ys), alignment="center")
    _set_xticks(plt, lo, hi)
    ticks = _log_ticks(min(ys), max(ys))
    plt.yticks(ticks, [_fmt(t) for t in ticks])


CURVE_MARKERS = "abcdefghijklmnopqrstuvwxyz"
MAX_CURVES = 6


def curve_batch_sizes(summary: Summary) -> list[int]:
    """At most MAX_CURVES batch sizes, spread evenly over the sweep's (always the first and last)."""
    bs = [pb.batch_size for pb in summary.per_b]
    if len(bs) <= MAX_CURVES:
        return bs
    idx = np.unique(np.round(np.linspace(0, len(bs) - 1, MAX_CURVES)).astype(int))
    return [bs[i] for i in idx]


def draw_curves(plt, summary: Summary, curves: dict, which: str, letters: bool = False) -> None:
    """One panel: the train (which='train') or test loss against steps, a line per batch size.

    ``letters`` draws each line with its own letter (for text without colour)."""
    m = summary.meta
    plt.xscale("log")
    plt.yscale("log")
    plt.title(f"{which} loss, one curve per batch size")
    plt.xlabel("steps")
    drawn, xmax = 0, 1
    for k, b in enumerate(curve_batch_sizes(summary)):
        c = curves.get(b)
        if not c:
            continue
        xs, ys = [], []
        for s, v in zip(c["step"], c[f"{which}_loss"]):
            if s and s >= 1 and finite(v) and v > 0:
                xs.append(s)
                ys.append(v)
        if xs:
            mark = CURVE_MARKERS[k] if letters else "braille"
            plt.plot(xs, ys, marker=mark, label=f"{mark + ' ' if letters else ''}B={b}")
            drawn += 1
            xmax = max(xmax, max(xs))
    if not drawn:
        plt.text("no curves saved", 1, 1)
        return
    first = next((r for r in summary.rows if finite(r.get("target_loss"))), None)
    if m.get("on") == which and first:
        plt.hline(first["target_loss"])
    _set_xticks(plt, 1, xmax)


def fresh_figure():
    """plotext's global figure, reset to a new one (plotext.main() and clear_figure(), its public API;
    not the private plotext._figure). Not thread-safe: only the CLI renders this way (the app's
    textual-plotext widgets have their own figures)."""
    fig = plotext.main()
    fig.clear_figure()
    return fig


def render(summary: Summary, curves: dict, width: int = 120, height: int = 22, color: bool = False) -> str:
    """The report, the trade-off figure and the curves figure as text (a fresh plotext figure each)."""
    parts = ["\n".join(summary.lines())]
    # plotext keeps a figure within the terminal it sees (80 columns when not a terminal): the panels'
    # real size, for placing the marks' labels
    width, height = min(width, plotext.terminal_width() or width), min(height, plotext.terminal_height() or height)
    panel = (width // 2, height)
    for panels in ((lambda p: draw_tradeoff(p, summary, "steps", *panel),
                    lambda p: draw_tradeoff(p, summary, "samples", *panel)),
                   (lambda p: draw_curves(p, summary, curves, "train", not color),
                    lambda p: draw_curves(p, summary, curves, "test", not color))):
        fig = fresh_figure()
        fig.theme("pro" if color else "clear")
        fig.subplots(1, 2)
        fig.plotsize(width, height)
        for i, draw in enumerate(panels, start=1):
            draw(fig.subplot(1, i))
        text = fig.build()
        parts.append(text if color else plotext.uncolorize(text))
    if summary.best_lr() is not None:
        fig = fresh_figure()
        fig.theme("pro" if color else "clear")
        fig.plotsize(width, height)
        draw_best_lr(fig, summary, width, height)
        text = fig.build()
        parts.append(text if color else plotext.uncolorize(text))
    parts.append(REGIMES_CAPTION)
    return "\n".join(parts)
