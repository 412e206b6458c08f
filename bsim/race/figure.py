"""The figure of ``bsim race --export FILE.svg``: one panel per lane, train and test accuracy against epochs.

Plain SVG text (no plotting library): panels in a grid of up to 4 columns, all on the same axes
(epochs from 0 to the furthest lane, accuracy over the range every curve spans), so that the
panels compare by eye, as the sources draw the batch-size comparison. In each panel the training
accuracy is a solid line and the test accuracy a dashed one; the title names the batch size, the lr
and the final test accuracy. A PNG is rendered from the SVG where a renderer is on this machine
(``RENDERERS``: rsvg-convert, ImageMagick, or a headless Chromium).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

from bsim.errors import BsimInputError, quote
from bsim.race.curves import Curve

PANEL_W, PANEL_H = 300, 220
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 52, 14, 30, 40
HEAD = 58
TRAIN_COLOR, TEST_COLOR = "#1f5fbf", "#d9661f"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round values from lo to hi."""
    span = hi - lo if hi > lo else 1.0
    raw = span / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.10g}" if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def accuracy_range(curves: list[Curve]) -> tuple[float, float]:
    """The y range every panel shares: from a round value under the lowest point to 1."""
    low = min(min(c.train + c.test) for c in curves)
    lo = math.floor(low * 10) / 10 if low < 0.9 else math.floor(low * 20) / 20
    return max(0.0, min(lo, 0.9)), 1.0


def figure_size(panels: int) -> tuple[int, int]:
    """(width, height) in pixels of the figure of this many panels (up to 4 a row)."""
    cols = min(4, panels)
    return cols * PANEL_W, HEAD + math.ceil(panels / cols) * PANEL_H


def figure_svg(curves: list[Curve], title: str, note: str) -> str:
    """The SVG text of the figure (see the module docstring)."""
    cols = min(4, len(curves))
    width, height = figure_size(len(curves))
    x_hi = max(max(c.epochs) for c in curves) or 1.0
    y_lo, y_hi = accuracy_range(curves)
    pw, ph = PANEL_W - MARGIN_L - MARGIN_R, PANEL_H - MARGIN_T - MARGIN_B
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="17">{escape(title)}</text>',
           f'<text x="{width / 2}" y="40" text-anchor="middle" font-size="11" fill="#555">{escape(note)}</text>',
           f'<g font-size="12"><line x1="{width - 250}" y1="50" x2="{width - 226}" y2="50" stroke="{TRAIN_COLOR}" '
           f'stroke-width="2"/><text x="{width - 222}" y="54">train accuracy</text>'
           f'<line x1="{width - 130}" y1="50" x2="{width - 106}" y2="50" stroke="{TEST_COLOR}" stroke-width="2" '
           f'stroke-dasharray="6 3"/><text x="{width - 102}" y="54">test accuracy</text></g>']
    for i, c in enumerate(curves):
        ox, oy = (i % cols) * PANEL_W + MARGIN_L, HEAD + (i // cols) * PANEL_H + MARGIN_T

        def px(e: float, ox: float = ox) -> float:
            return ox + pw * e / x_hi

        def py(a: float, oy: float = oy) -> float:
            return oy + ph * (y_hi - a) / (y_hi - y_lo)

        final = f", test {100 * c.test[-1]:.1f}%" if c.test else ""
        out.append(f'<g class="panel" data-lane="{escape(str(c.key))}" data-batch-size="{c.batch_size}" '
                   f'data-lr="{c.lr:.6g}" data-x0="{ox}" data-y0="{oy}" data-width="{pw}" data-height="{ph}" '
                   f'data-epochs="{x_hi:.10g}" data-acc-lo="{y_lo:.10g}" data-acc-hi="{y_hi:.10g}">')
        out.append(f'<text x="{ox + pw / 2}" y="{oy - 10}" text-anchor="middle" font-size="13">'
                   f'{escape(c.label)} (lr {c.lr:.4g}){final}</text>')
        out.append(f'<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
        for t in _ticks(y_lo, y_hi, 4):
            out.append(f'<line x1="{ox}" y1="{py(t):.2f}" x2="{ox + pw}" y2="{py(t):.2f}" stroke="#eee"/>'
                       f'<text x="{ox - 4}" y="{py(t) + 4:.2f}" text-anchor="end" font-size="10">'
                       f'{_fmt(100 * t)}%</text>')
        for t in _ticks(0.0, x_hi, 4):
            out.append(f'<text x="{px(t):.2f}" y="{oy + ph + 14}" text-anchor="middle" font-size="10">'
                       f'{_fmt(t)}</text>')
        out.append(f'<text x="{ox + pw / 2}" y="{oy + ph + 30}" text-anchor="middle" font-size="11">epochs</text>')
        for cls, ys, color, dash in (("train", c.train, TRAIN_COLOR, ""), ("test", c.test, TEST_COLOR,
                                                                            ' stroke-dasharray="6 3"')):
            pts = " ".join(f"{px(e):.3f},{py(a):.3f}" for e, a in zip(c.epochs, ys))
            out.append(f'<polyline class="{cls}" points="{pts}" fill="none" stroke="{color}" '
                       f'stroke-width="1.6"{dash}/>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


#: the programs that can turn an SVG into a PNG, tried in this order (the first that succeeds writes it)
RENDERERS = ("rsvg-convert", "magick", "convert", "chromium", "chromium-browser", "google-chrome")


def _render_command(name: str, svg: Path, png: Path, size: tuple[int, int]) -> list[str]:
    if name == "rsvg-convert":
        return [name, "-o", str(png), str(svg)]
    if name in ("magick", "convert"):
        return [name, str(svg), str(png)]
    return [name, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", f"--screenshot={png}",
            f"--window-size={size[0]},{size[1]}", svg.resolve().as_uri()]


def write_png(svg: Path, png: Path, size: tuple[int, int]) -> str | None:
    """Render ``svg`` (``size`` pixels) to ``png`` with the first renderer found that succeeds; None when
    done, else why not (one line)."""
    tried = []
    for name in RENDERERS:
        if shutil.which(name) is None:
            continue
        png.unlink(missing_ok=True)
        try:
            done = subprocess.run(_render_command(name, svg, png, size), capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{name} ({type(exc).__name__})")
            continue
        if done.returncode == 0 and png.is_file() and png.stat().st_size > 0:
            return None
        tried.append(f"{name} (exit {done.returncode})")
    if not tried:
        return "no PNG: no SVG renderer on this machine (rsvg-convert, ImageMagick, or Chromium)"
    return f"no PNG: the renderers found failed: {', '.join(tried)}"


def start_export(race, path) -> Callable[[], None]:
    """Check ``path`` (FILE.svg in a folder that exists), watch the race's lanes (``RaceCurves``), and return
    what writes the figure once the race is over: FILE.svg, then FILE.png where a renderer is found."""
    from bsim.atomic import atomic_write_text
    from bsim.race.curves import POINTS_PER_EPOCH, RaceCurves
    svg = Path(path)
    if svg.suffix.lower() != ".svg":
        raise BsimInputError(f"--export {quote(str(path))}: expected a file name ending in .svg (a PNG is "
                             f"written beside it where a renderer is found)")
    if not svg.parent.is_dir():
        raise BsimInputError(f"--export {quote(str(path))}: no such folder; expected FILE.svg in a folder "
                             f"that exists")
    curves = RaceCurves(race)
    title = f"{race.scenario.title}: accuracy per batch size"
    note = (f"measured by bsim: each lane's run (chain 0, = bsim run at that B) from one theta_0, "
            f"lanes by {race.by}, lr rule {race.lr_rule}; train and test split every 1/{POINTS_PER_EPOCH} epoch")

    def finish() -> None:
        atomic_write_text(svg, figure_svg(curves.in_order(), title, note))
        png = svg.with_suffix(".png")
        why = write_png(svg, png, figure_size(len(curves.order)))
        print(f"bsim: wrote {svg}" + (f"; {why}" if why else f" and {png}"), file=sys.stderr)
    return finish
