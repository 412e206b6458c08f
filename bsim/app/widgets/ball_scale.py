"""The ε-ball plane's scale: how many θ units the plane spans, when it zooms, and how its axes are labelled.

The plane is centred on θ* with equal units per dot on both axes. Its half-height is a round length
(``NICE``): FIT times the first ball known, then held across changes of B, lr, momentum and sampling so
that a shrinking ball is seen to shrink, until the ball in force would be under ``MIN_CELLS`` cells across
or larger than the plane; then it is fitted again, and the factor of that zoom is shown ("zoom ×4"), so
that the previous setting's ring, drawn at the new scale, shows how much the ball shrank. The axes are
labelled by offsets from θ* (±the half-height), which stay distinct however small the window.
"""

from __future__ import annotations

import math

import numpy as np

from bsim.app.format import num
from bsim.app.widgets.canvas import Chart
from bsim.app.widgets.panel import fit

#: half-widths of the plane: 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per decade
NICE = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: the plane's half-height is this many times the ball (the first ball known fills the panel)
FIT = 2.0
#: a ball narrower than this many cells across re-fits the plane (a zoom)
MIN_CELLS = 3


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


class PlaneScale:
    """The plane's half-height in θ units, and the zoom that last changed it.

    Owns only those two numbers. Depends only on the frames' numbers and the plane's size in cells, never
    on how many frames were drawn: the live app and an export of the same step agree.
    """

    def __init__(self):
        self.radius: float | None = None    # half-height of the plane (None: nothing known yet)
        self.fitted = False                 # fitted to a ball (else following the iterate)
        self.zoom: float | None = None      # old / new half-height of the last automatic re-fit
        self._runs = -1

    def refit(self) -> None:
        """Fit again to the next ball known (z, a reset, a new problem): no zoom to show."""
        self.radius, self.fitted, self.zoom = None, False, None

    def update(self, ball: float | None, in_force: float | None, distance: float, cw: int, ch: int,
               runs: int, previous: float | None = None) -> float:
        """The half-height for a plane of cw x ch cells.

        ``ball``: the largest ball known (the first fit); ``in_force``: the ball of the setting in force (its
        prediction, else its measurement), checked against MIN_CELLS and the plane; ``distance``: |θ - θ*|,
        followed before any ball is known; ``runs``: the FrameBuffer's count of runs (a new run fits again);
        ``previous``: the previous setting's ring, kept in view by a zoom when the new ball keeps MIN_CELLS.
        """
        if runs != self._runs:
            self._runs = runs
            self.refit()
        if not self.fitted:
            if ball is not None:
                self.radius, self.fitted = nice_above(FIT * ball), True
            else:
                need = distance * 1.15 if math.isfinite(distance) and distance > 0 else 1.0
                r = self.radius
                if r is None or need > r or need < r / 3:
                    self.radius = nice_above(need)
        elif in_force is not None and math.isfinite(in_force) and in_force > 0:
            dots = min(2 * cw, 4 * ch)
            if in_force / (2 * self.radius / max(dots - 1, 1)) < MIN_CELLS or in_force > self.radius:
                new = self.zoomed(in_force, previous, dots)
                if new != self.radius:
                    self.zoom, self.radius = self.radius / new, new
        return self.radius

    @staticmethod
    def zoomed(ball: float, previous: float | None, dots: int) -> float:
        """The half-height after a zoom: FIT times the ball, widened to keep the previous ring in view (1.15x it)
        as long as the ball stays MIN_CELLS across (ball / (2 r / (dots - 1)) >= MIN_CELLS)."""
        least = nice_above(FIT * ball)
        if previous is None or not math.isfinite(previous) or previous <= ball:
            return least
        cap = ball * (dots - 1) / (2 * MIN_CELLS)
        wide = nice_above(1.15 * previous)
        return wide if wide <= cap else max(nice_below(cap), least)

    def zoom_text(self) -> str:
        """"zoom ×4" (in) or "zoom out ×2" after an automatic re-fit; "" otherwise."""
        z = self.zoom
        if z is None:
            return ""
        return f"zoom ×{num(z, 2)}" if z >= 1 else f"zoom out ×{num(1 / z, 2)}"


def plane_window(star, radius: float, cw: int, ch: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Limits of a cw x ch plane centred on θ*, ``radius`` across its smaller half, equal units per dot."""
    dw, dh = 2 * cw, 4 * ch
    u = 2 * radius / (min(dw, dh) - 1)
    hx, hy = u * (dw - 1) / 2, u * (dh - 1) / 2
    return (float(star[0] - hx), float(star[0] + hx)), (float(star[1] - hy), float(star[1] + hy))


def offset_text(radius: float) -> str:
    """A NICE half-height as the axes write it: "0.0125", "8e-4" (no trailing zeros)."""
    text = num(radius, 3)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = mantissa.rstrip("0").rstrip(".") + "e" + exponent
    return text


def label_width(radius: float | None) -> int:
    """The y labels' width for offsets of ±radius ("+0.0125")."""
    return len("+" + offset_text(radius)) if radius else 6


def offset_axes(chart: Chart, star, radius: float) -> None:
    """Label the axes at θ* ± radius by the offset ("+0.0125", "-0.0125"), not by absolute θ, whose digits
    would read the same at both ends of a small window. The chart is made with ``xends=False``."""
    text = offset_text(radius)
    top, bottom = (int(round(float(chart.sy(star[1] + s * radius)))) // 4 for s in (1, -1))
    chart.ylabels = {top: "+" + text, bottom: "-" + text}
    both = 2 * len(text) + 4 <= chart.canvas.w          # else the right one alone
    chart.xlabels = ([(star[0] - radius, "-" + text)] if both else []) + [(star[0] + radius, "+" + text)]


def scale_bar(xlim, cw: int, width: int, zoom: str = "") -> list:
    """A bar of a round length (1, 2 or 5 x 10^k), the zoom if any, what one cell is in θ, the x axis's name."""
    cell = (xlim[1] - xlim[0]) / cw
    length = nice_below(cell * min(10, max(cw // 4, 2)))
    cells = max(int(round(length / cell)), 1)
    bar = "├" + "─" * max(cells - 2, 0) + "┤" if cells >= 2 else "│"
    head = (0, [(bar, "white"), (f" {num(length)}", "axis")])
    zoomed = (0, [(f" {zoom}", "yellow")] if zoom else [])
    axis = (2, [("  θ₁ →", "axis")])
    return fit([[head, zoomed, (1, [(f" (1 cell = {num(cell)} in θ)", "axis")]), axis],
                [head, zoomed, (1, [(f" (1 cell = {num(cell)})", "axis")]), axis],
                [head, zoomed, (1, [(f" (cell {num(cell)})", "axis")]), axis]], width)
