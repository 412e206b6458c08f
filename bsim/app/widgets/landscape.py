"""The landscape: the full loss U(θ) with the chains on it, which basin they are in over time, and the
escape rate measured against its prediction (in place of the ε-ball for the landscape problems).

1-D: the curve U(θ) with the chains as a histogram under it (purple), the run's θ on the curve (white),
each basin named at its minimum (sharp, flat) and the basins' boundary (the saddle) dotted. 2-D: the
loss's contour lines with the cloud of chains. Under it the fraction of the chains in each basin over
the steps (a mark where B changed), then the numbers: the occupancy now, the escape rate measured (escapes
per chain-step survived, ± its standard error) and predicted, labelled by its kind (Kramers approx.,
stability (iid), none), and where there is room both on a log scale with the error bar (├─●─┤, ◆ the
prediction). Every number comes with the frame (bsim.app.widgets.landscape_data): nothing is computed
here but the picture.
"""

from __future__ import annotations

import math

import numpy as np
from textual.strip import Strip

from bsim.app.format import num, ratio_text
from bsim.app.widgets.canvas import Chart
from bsim.app.widgets.landscape_data import occupancy_series, picture, readings, theory_label
from bsim.app.widgets.panel import Panel, fit, text_strip, wrap

#: the landscape chart keeps this many rows before the occupancy chart gets any
MIN_LAND_ROWS = 3
#: the histogram of chains fills at most this fraction of the 1-D chart's height
HIST_SHARE = 0.3


def curvature_text(pic, basin) -> str:
    """"U''=40" (1-D) or "λ=40" (2-D: the Hessian's largest eigenvalue) at the basin's minimum."""
    return f"{'U″' if pic.dim == 1 else 'λ'}={num(basin.curvature)}"


def legend_groups(pic) -> list:
    """Each basin by name with its curvature (and, for the non-uniform minima, its stability factor ρ: SGD can
    stay iff ρ <= 1), in its colour: the panel's first line."""
    groups = []
    for k, b in enumerate(pic.basins):
        groups.append((0, [(("" if k == 0 else "  ") + f"{b.name} ", b.color), (curvature_text(pic, b), "axis")]))
        if b.rho is not None:
            groups.append((1, [(f" ρ={num(b.rho)}", "red" if b.rho > 1 else "axis")]))
    groups.append((2, [("  ▮ chains" if pic.dim == 1 else "  ∴ chains", "purple")]))
    if pic.dim == 2:
        groups.append((3, [("  λ: largest curvature", "axis")]))
    return groups


def occupancy_groups(pic, r, curvatures: bool = False) -> list:
    """"sharp 73%  flat 27%  left 12/64": the chains in each basin now (measured), and those that left;
    ``curvatures``: each basin's curvature after its share (a short panel's first line)."""
    groups = []
    for k, b in enumerate(pic.basins):
        if k < len(r.fractions):
            groups.append((0, [(("" if k == 0 else "  ") + f"{b.name} ", b.color),
                               (f"{100 * r.fractions[k]:.0f}%", b.color)]))
            if curvatures:
                groups.append((0, [(f" {curvature_text(pic, b)}", "axis")]))
    if r.left is not None and r.chains > 1:
        groups.append((1, [(f"  left {r.left}/{r.chains}", "axis")]))
    if r.chains <= 1:
        groups.append((1, [("  (one run: e for chains)", "axis")]))
    return groups


def measured_groups(r, short: bool = False) -> list:
    """"escape/step meas 1.2e-3 ± 2e-4": the measured rate with its standard error (``short``: "meas" only)."""
    head = (0, [("meas " if short else "escape/step meas ", "axis")])
    if r.chains <= 1:
        return [head, (0, [("—", "green")]), (1, [(" e: chains measure it", "axis")])]
    if r.rate is None:
        return [head, (0, [("settling…", "axis")])]
    groups = [head, (0, [(num(r.rate), "green")])]
    if r.rate == 0 and r.exposure:     # no escape yet: how many chain-steps that is out of
        groups.append((1, [(f" in {num(r.exposure)} chain-steps", "axis")]))
    if r.se is not None:
        groups.append((0, [(f"±{num(r.se, 2)}" if short else f" ± {num(r.se, 2)}", "green")]))
    return groups


def predicted_groups(r, short: bool = False, ratio: bool = True) -> list:
    """"pred 1.5e-3 Kramers approx. ×0.8 ± 0.1": the prediction, its kind, and measured / predicted
    (``short``: "Kramers≈ 1.5e-3", the kind's short label before the number; ``ratio`` False: without the ratio)."""
    if short:
        return [(0, [(f"{theory_label(r.kind, short=True)} ", "axis"),
                     ("—" if r.theory is None or r.kind == "none" else num(r.theory), "orange")])]
    label = theory_label(r.kind)
    if r.theory is None or r.kind == "none":
        return [(0, [("pred ", "axis"), ("—", "orange")]), (0, [(f" {label}", "axis")])]
    groups = [(0, [("pred ", "axis"), (num(r.theory), "orange")]), (0, [(f" {label}", "axis")])]
    if ratio and r.rate and r.theory > 0 and r.chains > 1:     # (no escape yet: no ratio to settle)
        groups.append((1, [(ratio_text(r.rate, r.se, r.theory), None)]))
    return groups


def rate_bar(r, width: int) -> list:
    """The measured rate ± 1 standard error (├─●─┤, green; its ends at least a cell from ●) and the prediction
    (◆, orange) on a log scale whose ends are written at the sides; [] before a measured escape."""
    vals = [v for v in (r.rate, r.theory) if v is not None and v > 0 and math.isfinite(v)]
    if not r.rate or r.chains <= 1:      # nothing measured to set against the prediction yet
        return []
    lo_v, hi_v = (r.rate - r.se, r.rate + r.se) if r.rate and r.se else (None, None)
    ends = vals + [v for v in (lo_v, hi_v) if v is not None and v > 0]
    a, b = math.floor(math.log10(min(ends)) - 0.2), math.ceil(math.log10(max(ends)) + 0.2)   # whole decades
    left, right = num(10.0 ** a, 1), num(10.0 ** b, 1)
    n = width - len(left) - len(right) - 2
    if n < 8:
        return []
    cells = ["·"] * n
    colors = ["axis"] * n

    def at(v):
        return min(max(int(round((math.log10(v) - a) / (b - a) * (n - 1))), 0), n - 1)
    if r.rate and r.rate > 0:           # the bar's ends at least a cell from the point, to be seen
        i0 = min(at(lo_v) if lo_v and lo_v > 0 else 0, max(at(r.rate) - 1, 0))
        i1 = max(at(hi_v) if hi_v else at(r.rate), min(at(r.rate) + 1, n - 1))
        for i in range(i0, i1 + 1):
            cells[i], colors[i] = "─", "green"
        cells[i0], cells[i1] = "├", "┤"
        cells[at(r.rate)] = "●"
    if r.theory and r.theory > 0:
        cells[at(r.theory)], colors[at(r.theory)] = "◆", "orange"
    parts = []
    for ch, c in zip(cells, colors):
        if parts and parts[-1][1] == c:
            parts[-1] = (parts[-1][0] + ch, c)
        else:
            parts.append((ch, c))
    return [(left + " ", "axis")] + parts + [(" " + right, "axis")]


class LandscapePanel(Panel):
    """The loss landscape with the chains on it, the basins' occupancy over time, the escape rate.

    Owns nothing but its drawing. Reads: the frame's landscape (bsim.app.widgets.landscape_data: the loss, the
    basins, the chains' positions, the occupancy and its history, the escape numbers) and the FrameBuffer's
    batch-size changes.
    """

    TITLE = "Landscape: U(θ) and its basins"
    _names_with_curvature = False
    OCCUPANCY_FIRST = False       # the occupancy now in the first line, whatever the height (a race's lane)

    # ----------------------------------------------------------- layout
    def build(self, width: int, height: int):
        f = self.history.latest
        pic = picture(f) if f is not None else None
        if pic is None:
            return self.message("starting…" if f is None else "no landscape for this problem", width, height)
        self._title(self.TITLE if width >= len(self.TITLE) + 4 else "Landscape")
        r = readings(f)
        short = height - 4 < MIN_LAND_ROWS + 2
        legend = self.first_line(pic, r, width, short)
        texts = [fit([occupancy_groups(pic, r)], width), fit([measured_groups(r), measured_groups(r, True)], width),
                 fit([predicted_groups(r), predicted_groups(r, ratio=False), predicted_groups(r, True)], width)]
        if short or self.OCCUPANCY_FIRST:      # the occupancy now is in the first line
            texts = texts[1:]
        bar = rate_bar(r, width)
        if bar and height - 2 - len(texts) >= MIN_LAND_ROWS + 4:
            texts.append(bar)
        note = wrap(r.note, width) if r.note else []
        if note and height - 1 - len(note) - len(texts) >= MIN_LAND_ROWS + 6:
            texts += [[(line, "axis")] for line in note]
        rest = height - 1 - len(texts)
        occ_rows = 0 if rest < MIN_LAND_ROWS + 2 else min(4, max(2, (rest - MIN_LAND_ROWS) // 2))
        land_rows = rest - occ_rows
        out = [text_strip(legend, width)]
        # the basins' curvatures on the curve itself when the first line has no room for them
        self._names_with_curvature = not any("U″" in text for text, _c in legend) and not self.OCCUPANCY_FIRST
        out += self.landscape(f, pic, r, width, land_rows) if land_rows > 0 else []
        if occ_rows:
            out += self.occupancy_chart(f, pic, r, width, occ_rows)
        out += [text_strip(parts, width) for parts in texts]
        return out[:height]

    def first_line(self, pic, r, width: int, short: bool) -> list:
        """The panel's first line: each basin with its curvature; ``short`` (a short panel): the occupancy now,
        with the curvatures where they fit (a race's lane: without, the race's panel names them once)."""
        if self.OCCUPANCY_FIRST:
            return fit([occupancy_groups(pic, r)], width)
        if short:
            return fit([occupancy_groups(pic, r, curvatures=True), occupancy_groups(pic, r)], width)
        return fit([legend_groups(pic)], width)

    # ----------------------------------------------------------- the landscape
    def landscape(self, f, pic, r, width: int, rows: int) -> list[Strip]:
        return (self.curve if pic.dim == 1 else self.plane)(f, pic, r, width, rows).strips()

    def curve(self, f, pic, r, width: int, rows: int) -> Chart:
        """U(θ) over the box, the chains' histogram under it, the saddle dotted, the basins named."""
        cxs, cus = pic.curve
        xs = np.linspace(pic.lo[0], pic.hi[0], 2 * width)          # a point per dot column
        u = np.interp(xs, cxs, cus)
        ok = np.isfinite(cus)
        lo = float(np.min(cus[ok])) if ok.any() else 0.0
        tops = [float(np.interp(s[0], cxs, cus)) for s in pic.saddles]
        top = max(tops) if tops else float(np.max(cus[ok])) if ok.any() else 1.0
        span = max(top - lo, 1e-12)
        # the top of the chart: twice the highest saddle above the lowest point; the bottom: the histogram
        hi = lo + 2.0 * span
        bottom = lo - 2.0 * span * HIST_SHARE / (1 - HIST_SHARE)
        chart = Chart(width, rows, xlim=(pic.lo[0], pic.hi[0]), ylim=(bottom, hi), xaxis=False, yaxis=False)
        for s in pic.saddles:
            chart.vline(s[0], "grey")
        self.histogram(chart, r)
        chart.line(xs, u, "blue")
        if r.positions is not None and len(r.positions) and math.isfinite(r.positions[0, 0]):
            x = float(r.positions[0, 0])
            chart.points([x], [float(np.interp(x, cxs, cus))], "white")
        for col, text, color in name_basins(chart, pic, with_curvature=self._names_with_curvature):
            chart.label(0, col, text, color)
        return chart

    def histogram(self, chart: Chart, r) -> None:
        """The chains' θ as a histogram, one bar per dot column, rising from the chart's bottom."""
        if r.positions is None or len(r.positions) < 2:
            return
        cv = chart.canvas
        px = np.rint(chart.sx(r.positions[:, 0]))
        px = px[np.isfinite(px) & (px >= 0) & (px < cv.dots_w)].astype(int)
        counts = np.bincount(px, minlength=cv.dots_w)
        if counts.max() == 0:
            return
        tall = max(int(cv.dots_h * HIST_SHARE), 1)
        heights = np.ceil(counts / counts.max() * tall).astype(int)
        cols = np.nonzero(heights)[0]
        cv.segments(cols, np.full(cols.size, cv.dots_h - 1), cols, cv.dots_h - heights[cols], "purple")

    def plane(self, f, pic, r, width: int, rows: int) -> Chart:
        """The loss's contours over the box, the cloud of chains, each basin's minimum named."""
        chart = Chart(width, rows, xlim=(pic.lo[0], pic.hi[0]), ylim=(pic.lo[1], pic.hi[1]),
                      xaxis=False, yaxis=False)
        cv = chart.canvas
        if pic.grid is not None:
            u = resample(pic.grid, cv.dots_h, cv.dots_w)
            iy, ix = np.nonzero(level_mask(u, saddle_level(pic))[::-1, :])
            cv.dots(ix, iy, "contour")
        if r.positions is not None and len(r.positions) > 1:
            chart.points(r.positions[:, 0], r.positions[:, 1], "purple")
        if r.positions is not None and len(r.positions):
            chart.points(r.positions[:1, 0], r.positions[:1, 1], "white")
        for b in pic.basins:
            chart.mark(b.center[0], b.center[1], "×", b.color)
            px, py = float(chart.sx(b.center[0])), float(chart.sy(b.center[1]))
            if math.isfinite(px) and math.isfinite(py):
                row, col = int(round(py)) // 4, int(round(px)) // 2
                row = row - 1 if row > 0 else row + 1
                chart.label(row, min(max(col - len(b.name) // 2, 0), max(cv.w - len(b.name), 0)), b.name, b.color)
        return chart

    # ----------------------------------------------------------- occupancy over time
    def occupancy_chart(self, f, pic, r, width: int, rows: int) -> list[Strip]:
        """The fraction of the chains in each basin over the run's steps, 0 to 1, a mark where B changed."""
        series = occupancy_series(r)
        if series is None:
            return self.message("basin occupancy: from the next steps", width, rows)
        ticks, fr = series
        chart = Chart(width, rows, xlim=(float(ticks[0]), float(max(ticks[-1], ticks[0] + 1))), ylim=(0.0, 1.0),
                      xaxis=False, digits=1)
        offset = f.tick - f.step            # the history is in ticks, the batch-size changes in steps
        taken: set[int] = set()             # the label row's cells: the latest change's label wins
        for s, _old, new in reversed(self.history.b_changes[1:]):
            t = s + offset
            if ticks[0] <= t <= ticks[-1]:
                chart.vline(t, "grey")
                label = f"B={new}"
                col = min(int(float(chart.sx(t))) // 2 + 1, max(chart.canvas.w - len(label), 0))
                cells = set(range(col - 1, col + len(label) + 1))
                if not cells & taken:
                    taken |= cells
                    chart.label(0, col, label, "axis")
        for k, b in enumerate(pic.basins):
            if k < fr.shape[1]:
                chart.line(ticks, fr[:, k], b.color)
        chart.label(rows - 1, -1, "in basin", "axis")
        return chart.strips()


def name_basins(chart: Chart, pic, with_curvature: bool = False) -> list[tuple[int, str, str]]:
    """(column, text, colour) of each basin's name on the 1-D chart's top row, centred over its minimum;
    ``with_curvature``: "sharp U″=4" where every such label fits without touching another, else the names."""
    w = chart.canvas.w

    def place(texts):
        out = []
        for b, text in zip(pic.basins, texts):
            col = int(round(float(chart.sx(b.center[0])))) // 2 - len(text) // 2
            out.append((min(max(col, 0), max(w - len(text), 0)), text, b.color))
        return out
    if with_curvature:
        long = place([f"{b.name} {curvature_text(pic, b)}" for b in pic.basins])
        spans = sorted((c, c + len(t)) for c, t, _ in long)
        if all(a[1] < b[0] for a, b in zip(spans, spans[1:])) and all(e <= w for _s, e in spans):
            return long
    return apart(place([b.name for b in pic.basins]), w)


def apart(labels: list[tuple[int, str, str]], w: int) -> list[tuple[int, str, str]]:
    """The labels moved apart so that a cell separates each from the next ("non-uniform uniform", not
    "non-uniformuniform" on a narrow chart): pushed right, then back left from the chart's right edge."""
    out = sorted(labels)
    for i in range(1, len(out)):
        end = out[i - 1][0] + len(out[i - 1][1]) + 1
        if out[i][0] < end:
            out[i] = (end, *out[i][1:])
    for i in range(len(out) - 1, -1, -1):
        edge = w if i == len(out) - 1 else out[i + 1][0] - 1
        if out[i][0] + len(out[i][1]) > edge:
            out[i] = (max(edge - len(out[i][1]), 0), *out[i][1:])
    return out


#: contour lines per barrier height (the saddle's level is one of them: the basins' boundary)
LEVELS_PER_BARRIER = 3


def saddle_level(pic) -> float | None:
    """U at the (highest) saddle, from the grid (bilinear), None without a saddle inside the box."""
    levels = []
    gy, gx = pic.grid.shape
    for s in pic.saddles:
        fx = (s[0] - pic.lo[0]) / (pic.hi[0] - pic.lo[0]) * (gx - 1)
        fy = (s[1] - pic.lo[1]) / (pic.hi[1] - pic.lo[1]) * (gy - 1)
        if 0 <= fx <= gx - 1 and 0 <= fy <= gy - 1:
            levels.append(float(resample(pic.grid, 1, 1, (fy, fy), (fx, fx))[0, 0]))
    return max(levels) if levels else None


def level_mask(u: np.ndarray, saddle: float | None) -> np.ndarray:
    """Dots where U crosses a level L_min + k (L_saddle - L_min) / LEVELS_PER_BARRIER, up to the saddle's level
    (without a saddle: 8 levels over the grid's range): few lines, one of them the saddle's level."""
    lo = float(np.nanmin(u))
    top = saddle if saddle is not None and saddle > lo else None
    step = (top - lo) / LEVELS_PER_BARRIER if top is not None else (float(np.nanmax(u)) - lo) / 8
    if not math.isfinite(step) or step <= 0:
        return np.zeros(u.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        q = np.floor((u - lo) / step + 1e-9)
    q[~np.isfinite(q) | (q > LEVELS_PER_BARRIER)] = LEVELS_PER_BARRIER + 1
    m = np.zeros(u.shape, dtype=bool)
    m[:, :-1] |= q[:, :-1] != q[:, 1:]
    m[:-1, :] |= q[:-1, :] != q[1:, :]
    return m


def resample(grid: np.ndarray, ny: int, nx: int, rows=None, cols=None) -> np.ndarray:
    """A (gy, gx) grid over a box, bilinearly onto (ny, nx) points over the same box (row 0 stays the bottom);
    ``rows``, ``cols``: the span of fractional grid indices to cover (default: the whole grid)."""
    gy, gx = grid.shape
    y = np.linspace(*(rows or (0, gy - 1)), ny)
    x = np.linspace(*(cols or (0, gx - 1)), nx)
    y0 = np.clip(np.floor(y).astype(int), 0, gy - 2) if gy > 1 else np.zeros(ny, int)
    x0 = np.clip(np.floor(x).astype(int), 0, gx - 2) if gx > 1 else np.zeros(nx, int)
    ty, tx = (y - y0)[:, None], (x - x0)[None, :]
    y1, x1 = np.minimum(y0 + 1, gy - 1), np.minimum(x0 + 1, gx - 1)
    g = grid
    return ((1 - ty) * ((1 - tx) * g[np.ix_(y0, x0)] + tx * g[np.ix_(y0, x1)])
            + ty * ((1 - tx) * g[np.ix_(y1, x0)] + tx * g[np.ix_(y1, x1)]))
