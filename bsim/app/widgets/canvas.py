"""A small braille chart renderer (numpy), fast enough to redraw every panel 20 times a second.

Each character cell holds 2 x 4 braille dots, so a w x h cell canvas has
2w x 4h dots; on a terminal with cells twice as tall as wide a dot is square,
which keeps the parameter plane's circles round. ``Chart`` adds axes with
labels at the ends, linear or log10 scales, lines, points, marks and text,
and returns Textual ``Strip``s.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from bsim.app.format import num

# bit of each dot: rows 0-3 from the top, columns 0-1
_DOT = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
_BRAILLE = np.array([chr(0x2800 + i) for i in range(256)])

# palette: 0 is the axis colour; the rest are the series colours
COLORS = {
    "axis": "#7f8a99",
    "blue": "#4fb3f6",
    "orange": "#ffab40",
    "green": "#7ccf7c",
    "red": "#ef6461",
    "purple": "#c39bd3",
    "grey": "#5c6370",
    "white": "#e6e6e6",
    "yellow": "#f4d35e",
    "contour": "#3d4b5c",
    "pink": "#ff79c6",       # the ε-ball's previous setting, apart from every series and the contours
}
_NAMES = list(COLORS)
_STYLES = [Style(color=COLORS[n]) for n in _NAMES]


def color_index(name: str) -> int:
    return _NAMES.index(name)


class Canvas:
    """A grid of braille cells with a colour per cell (the last series drawn there wins)."""

    def __init__(self, width: int, height: int):
        self.w, self.h = max(width, 1), max(height, 1)
        self.bits = np.zeros((self.h, self.w), dtype=np.uint8)
        self.color = np.zeros((self.h, self.w), dtype=np.int16)
        self.text: dict[tuple[int, int], tuple[str, int]] = {}

    @property
    def dots_w(self) -> int:
        return 2 * self.w

    @property
    def dots_h(self) -> int:
        return 4 * self.h

    def dots(self, px, py, color: str) -> None:
        """Set dots at integer dot coordinates (py = 0 at the top); outside ones are dropped."""
        px = np.asarray(px, dtype=float).ravel()
        py = np.asarray(py, dtype=float).ravel()
        m = np.isfinite(px) & np.isfinite(py)
        m[m] = (px[m] >= 0) & (px[m] < self.dots_w) & (py[m] >= 0) & (py[m] < self.dots_h)
        px, py = px[m].astype(np.int64), py[m].astype(np.int64)
        if px.size == 0:
            return
        r, c = py // 4, px // 2
        np.bitwise_or.at(self.bits, (r, c), _DOT[py % 4, px % 2])
        self.color[r, c] = color_index(color)

    def segments(self, x0, y0, x1, y1, color: str) -> None:
        """Straight lines between dot coordinates (float arrays of the same length)."""
        x0, y0, x1, y1 = (np.asarray(a, dtype=float).ravel() for a in (x0, y0, x1, y1))
        ok = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
        x0, y0, x1, y1 = x0[ok], y0[ok], x1[ok], y1[ok]
        if x0.size == 0:
            return
        # clip huge coordinates so a segment never asks for millions of dots
        lim = 4.0 * (self.dots_w + self.dots_h)
        x0, x1 = np.clip(x0, -lim, lim), np.clip(x1, -lim, lim)
        y0, y1 = np.clip(y0, -lim, lim), np.clip(y1, -lim, lim)
        n = np.maximum(np.abs(x1 - x0), np.abs(y1 - y0)).astype(np.int64) + 1
        seg = np.repeat(np.arange(n.size), n)
        start = np.repeat(np.cumsum(n) - n, n)
        t = (np.arange(seg.size) - start) / np.maximum(n[seg] - 1, 1)
        px = np.rint(x0[seg] + t * (x1 - x0)[seg])
        py = np.rint(y0[seg] + t * (y1 - y0)[seg])
        self.dots(px, py, color)

    def put(self, row: int, col: int, text: str, color: str = "white") -> None:
        for i, ch in enumerate(text):
            if 0 <= row < self.h and 0 <= col + i < self.w:
                self.text[(row, col + i)] = (ch, color_index(color))

    def rows(self) -> list[list[Segment]]:
        """Segments of each row, one per run of cells of one colour."""
        chars = _BRAILLE[self.bits]
        colors = self.color.copy()
        empty = self.bits == 0
        chars[empty] = " "
        for (r, c), (ch, ci) in self.text.items():
            chars[r, c] = ch
            colors[r, c] = ci
            empty[r, c] = False
        # a blank cell takes the colour of the cell before it: fewer runs, fewer segments to draw
        idx = np.where(empty, 0, np.arange(self.w)[None, :])
        np.maximum.accumulate(idx, axis=1, out=idx)
        colors = np.take_along_axis(colors, idx, axis=1)
        lines = np.ascontiguousarray(chars).view(f"<U{self.w}").ravel().tolist()   # each row as one str
        rr, cc = np.nonzero(colors[:, 1:] != colors[:, :-1])     # the runs' starts (after the first), row by row
        cc += 1
        bounds = np.searchsorted(rr, np.arange(self.h + 1)).tolist()
        run_colors, cc, first = colors[rr, cc].tolist(), cc.tolist(), colors[:, 0].tolist()
        out = []
        for r, line in enumerate(lines):
            line = line.ljust(self.w)       # (a row's trailing NULs would be dropped by numpy; there are none)
            segs, start, ci = [], 0, first[r]
            for k in range(bounds[r], bounds[r + 1]):
                end = cc[k]
                segs.append(Segment(line[start:end], _STYLES[ci]))
                start, ci = end, run_colors[k]
            segs.append(Segment(line[start:], _STYLES[ci]))
            out.append(segs)
        return out


class Scale:
    """Data -> dot coordinate along one axis (linear or log10); nan for what a log scale cannot show."""

    def __init__(self, lo: float, hi: float, n_dots: int, log: bool = False, flip: bool = False):
        self.log = log
        self.lo, self.hi = lo, hi
        a, b = (_log(lo), _log(hi)) if log else (lo, hi)
        if not (math.isfinite(a) and math.isfinite(b)):
            a, b = 0.0, 1.0
        if b - a <= 1e-300 or b - a < 1e-12 * max(abs(a), abs(b)):
            pad = abs(a) * 0.05 + (0.5 if log else 1e-9 + abs(a) * 0.05)
            a, b = a - pad, b + pad
        self.a, self.b, self.n, self.flip = a, b, n_dots, flip

    def __call__(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
        t = (v - self.a) / (self.b - self.a) * (self.n - 1)
        return (self.n - 1) - t if self.flip else t

    def inverse(self, d: float) -> float:
        t = (self.n - 1 - d) if self.flip else d
        v = self.a + t / max(self.n - 1, 1) * (self.b - self.a)
        return 10 ** v if self.log else v


def _log(v: float) -> float:
    return math.log10(v) if v > 0 else float("nan")


def data_range(*arrays, log: bool = False, pad: float = 0.05) -> tuple[float, float] | None:
    """(lo, hi) over the finite (and, on a log scale, positive) values, padded; None if there are none."""
    vals = [np.asarray(a, dtype=float).ravel() for a in arrays if a is not None and np.size(a)]
    if not vals:
        return None
    v = np.concatenate(vals)
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    if log:
        a, b = math.log10(lo), math.log10(hi)
        span = max(b - a, 0.3)
        return 10 ** (a - pad * span), 10 ** (b + pad * span)
    span = hi - lo if hi > lo else max(abs(hi), 1e-12)
    return lo - pad * span, hi + pad * span


class Chart:
    """A canvas with a y-axis label column on the left and an x-axis label row below."""

    def __init__(self, width: int, height: int, *, xlim=(0.0, 1.0), ylim=(0.0, 1.0), xlog=False, ylog=False,
                 ylabel_width: int | None = None, xaxis: bool = True, yaxis: bool = True, digits: int = 2,
                 xends: bool = True):
        self.width, self.height = width, height
        self.xends = xends              # the x axis's row names its two ends (False: only ``xlabels``)
        self.xaxis, self.yaxis = xaxis, yaxis
        ch = max(height - (1 if xaxis else 0), 1)
        self.sy = Scale(ylim[0], ylim[1], 4 * ch, ylog, flip=True)
        self.ylabels: dict[int, str] = {}
        if yaxis:
            self.ylabels = {0: num(self.sy.inverse(0), digits), ch - 1: num(self.sy.inverse(4 * ch - 1), digits)}
            if ch >= 7:
                mid = (ch - 1) // 2
                self.ylabels[mid] = num(self.sy.inverse(mid * 4 + 1.5), digits)
        auto = max((len(t) for t in self.ylabels.values()), default=0)
        self.ylw = (ylabel_width or auto) if yaxis else 0
        cw = max(width - self.ylw - (1 if yaxis else 0), 1)
        self.canvas = Canvas(cw, ch)
        self.sx = Scale(xlim[0], xlim[1], self.canvas.dots_w, xlog)
        self.xlabels: list[tuple[float, str]] = []
        self.digits = digits

    # ------------------------------------------------------------- drawing
    def line(self, xs, ys, color: str) -> None:
        px, py = self.sx(xs), self.sy(ys)
        if px.size == 1:
            self.canvas.dots(np.rint(px), np.rint(py), color)
        elif px.size > 1:
            self.canvas.segments(px[:-1], py[:-1], px[1:], py[1:], color)

    def points(self, xs, ys, color: str) -> None:
        px, py = self.sx(xs), self.sy(ys)
        ok = np.isfinite(px) & np.isfinite(py)
        self.canvas.dots(np.rint(px[ok]), np.rint(py[ok]), color)

    def vline(self, x: float, color: str, dotted: bool = True) -> None:
        px = float(self.sx(x))
        if not math.isfinite(px):
            return
        ys = np.arange(0, self.canvas.dots_h, 2 if dotted else 1)
        self.canvas.dots(np.full(ys.size, round(px)), ys, color)

    def hline(self, y: float, color: str, dotted: bool = True) -> None:
        py = float(self.sy(y))
        if not math.isfinite(py):
            return
        xs = np.arange(0, self.canvas.dots_w, 2 if dotted else 1)
        self.canvas.dots(xs, np.full(xs.size, round(py)), color)

    def circle(self, cx: float, cy: float, r: float, color: str) -> None:
        """A circle in data units (both axes linear and equally scaled)."""
        n = 180
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        self.points(cx + r * np.cos(t), cy + r * np.sin(t), color)

    def mark(self, x: float, y: float, ch: str, color: str) -> None:
        px, py = float(self.sx(x)), float(self.sy(y))
        if math.isfinite(px) and math.isfinite(py):
            self.canvas.put(int(round(py)) // 4, int(round(px)) // 2, ch, color)

    def label(self, row: int, col: int, text: str, color: str = "axis") -> None:
        """Text inside the plot area (row 0 is the top; a negative col counts from the right)."""
        if col < 0:
            col = self.canvas.w - len(text) + col + 1
        self.canvas.put(row, col, text, color)

    # ------------------------------------------------------------- output
    def strips(self) -> list[Strip]:
        rows = self.canvas.rows()
        axis = _STYLES[0]
        out = []
        for r, segs in enumerate(rows):
            if self.yaxis:
                lab = self.ylabels.get(r, "")
                segs = [Segment(lab.rjust(self.ylw)[: self.ylw] + "┤" if lab else " " * self.ylw + "│", axis)] + segs
            out.append(Strip(segs, self.width))
        if self.xaxis:
            out.append(Strip([Segment(self._xaxis_text(), axis)], self.width))
        return [s.adjust_cell_length(self.width) for s in out]

    def _xaxis_text(self) -> str:
        w = self.canvas.w
        left = num(self.sx.inverse(0), self.digits)
        right = num(self.sx.inverse(self.canvas.dots_w - 1), self.digits)
        if not self.xends:
            left = right = ""
        line = [" "] * w
        for i, ch in enumerate(left):
            if i < w:
                line[i] = ch
        for i, ch in enumerate(right):
            j = w - len(right) + i
            if 0 <= j < w and j > len(left):
                line[j] = ch
        for x, text in self.xlabels:
            px = float(self.sx(x))
            if not math.isfinite(px):
                continue
            c = int(round(px)) // 2 - len(text) // 2
            c = min(max(c, 0), w - len(text))
            if all(line[k] == " " for k in range(max(c - 1, 0), min(c + len(text) + 1, w))):
                line[c:c + len(text)] = list(text)
        pad = " " * (self.ylw + 1) if self.yaxis else ""
        return pad + "".join(line)
