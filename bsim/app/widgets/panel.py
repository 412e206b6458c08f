"""The base of every panel: a titled box whose lines are built once per change and size.

A panel's ``build(width, height)`` returns its lines as Strips. ``show(history)``
rebuilds only when what it draws changed (``cache_key``), so a paused run costs
nothing; a shown panel then compares the new lines with the last ones and
repaints only those that differ (Textual styles, composites and writes just
those lines), and restyles only those into the theme's colours.
"""

from __future__ import annotations

from rich.color import Color as RichColor
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from bsim.app.history import FrameBuffer
from bsim.app.widgets.canvas import COLORS

_STYLE_CACHE: dict[str | None, Style] = {}


def style(name: str | None) -> Style:
    """A colour of the palette by name (or any Rich style string); None is plain."""
    if name not in _STYLE_CACHE:
        if name is None:
            _STYLE_CACHE[name] = Style()
        elif name in COLORS:
            _STYLE_CACHE[name] = Style(color=COLORS[name])
        else:
            _STYLE_CACHE[name] = Style.parse(name)
    return _STYLE_CACHE[name]


def palette_remap(palette: dict[str, str] | None) -> dict[RichColor, RichColor] | None:
    """bsim's chart colours (canvas.COLORS) -> a theme's (``bsim.app.themes.chart_palette``); None: unchanged."""
    if not palette:
        return None
    return {RichColor.parse(COLORS[name]): RichColor.parse(palette[name]) for name in COLORS if name in palette}


def restyle(lines: list[Strip], remap: dict[RichColor, RichColor] | None, base: Style | None = None,
            cache: dict | None = None) -> list[Strip]:
    """The lines with every palette colour (foreground and background) swapped for the theme's, on ``base``.

    One pass and one new Strip a line; each distinct style is combined once (``cache``: kept by the caller
    for the same remap and base).
    """
    if not remap and base is None:
        return lines
    remap = remap or {}
    cache = {} if cache is None else cache

    def swap(st: Style | None) -> Style | None:
        if st is not None:
            fg, bg = remap.get(st.color), remap.get(st.bgcolor)
            if fg is not None or bg is not None:
                st = st + Style(color=fg, bgcolor=bg)
        return st if base is None else base + st

    out = []
    for strip in lines:
        segs = []
        for text, st, control in strip:
            new = cache.get(st, cache)
            if new is cache:
                new = cache[st] = swap(st)
            segs.append(Segment(text, new, control))
        out.append(Strip(segs, strip.cell_length))
    return out


def _line_regions(ys: list[int], width: int) -> list[Region]:
    """Regions (panel content coordinates) covering the lines ``ys`` (ascending), one per run of lines."""
    out, start, prev = [], ys[0], ys[0]
    for y in ys[1:]:
        if y != prev + 1:
            out.append(Region(0, start, width, prev - start + 1))
            start = y
        prev = y
    out.append(Region(0, start, width, prev - start + 1))
    return out


def text_strip(parts, width: int) -> Strip:
    """One line from (text, colour) parts, cut or padded to ``width`` cells."""
    if isinstance(parts, str):
        parts = [(parts, None)]
    segs = [Segment(t, style(c)) for t, c in parts if t]
    n = sum(cell_len(t) for t, _c in parts)
    if n > width:
        return Strip(segs, n).adjust_cell_length(width)
    if n < width:
        segs.append(Segment(" " * (width - n)))
    return Strip(segs, width)


def cells(parts) -> int:
    """The width in cells of (text, colour) parts."""
    return sum(cell_len(t) for t, _c in parts)


def _whole_words(parts, width: int) -> list:
    """The parts cut after the last whole word that fits in ``width`` cells (never mid-word)."""
    out, used = [], 0
    for text, color in parts:
        if used + cell_len(text) <= width:
            out.append((text, color))
            used += cell_len(text)
            continue
        room = width - used
        head = text[:room + 1]
        cut = head.rfind(" ")
        if cut > 0:
            out.append((text[:cut].rstrip(), color))
        break
    return out


def fit(candidates, width: int) -> list:
    """A readout line that fits ``width`` cells, never cutting a number or a word.

    ``candidates`` is a list of wordings, longest first; each is a list of
    groups ``(rank, parts)``. A group is shown whole or not at all: rank 0 is
    essential, and groups of higher rank are dropped first (the highest rank,
    then the later one; one dropped early comes back if it fits once the
    others are gone and every more important one came back). The wording that fits with the fewest groups dropped
    is taken (the earlier on a tie); failing all, the last loses groups from
    its end as well.
    """
    def shown(groups) -> list:
        parts = [p for _rank, g in groups for p in g if p[0]]
        if parts:   # a line does not start with the separator of a dropped group
            parts[0] = (parts[0][0].lstrip(), parts[0][1])
        return parts

    best = None
    for groups in candidates:
        kept, gone = list(range(len(groups))), []
        while cells(shown([groups[k] for k in kept])) > width:
            optional = [k for k in kept if groups[k][0] > 0]
            if not optional:
                break
            k = max(optional, key=lambda k: (groups[k][0], k))
            kept.remove(k)
            gone.append(k)
        for k in reversed(gone):    # a group dropped early may fit again once the longer ones are gone,
            if cells(shown([groups[j] for j in sorted(kept + [k])])) > width:
                break               # but never in place of a more important one
            kept = sorted(kept + [k])
        dropped, kept = len(groups) - len(kept), [groups[k] for k in kept]
        if cells(shown(kept)) <= width and (best is None or dropped < best[0]):
            best = (dropped, kept)
    if best is not None:
        return shown(best[1])
    if not candidates:
        return []
    kept = list(candidates[-1])
    while len(kept) > 1 and cells(shown(kept)) > width:
        kept.pop()
    return _whole_words(shown(kept), width)


def wrap(text: str, width: int) -> list[str]:
    """Words wrapped to ``width`` cells."""
    lines, cur = [], ""
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    return lines or [""]


def cannot_draw(f, exc: Exception) -> str:
    """What a panel says in place of a picture it could not draw, never the exception's text.

    A diverged run says so (the frame's status); numbers too large to draw (an ArithmeticError,
    OverflowError among them, on the way to divergence) say the run is diverging; anything else
    names only the kind of error.
    """
    if f is not None and f.status == "diverged":
        return f"diverged at step {f.step:,}: nothing finite to draw. Press r to reset, - to lower the lr"
    if isinstance(exc, ArithmeticError):
        lr = f" at lr {f.lr:g}" if f is not None else ""
        return f"diverging{lr}: the numbers are too large to draw. Press - to lower the lr, r to reset"
    return f"cannot draw this frame ({type(exc).__name__})"


class Panel(Widget):
    """A titled panel that draws from the frame history."""

    DEFAULT_CSS = """
    Panel {
        border: round $primary-darken-1;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 0;
    }
    """
    TITLE = "panel"

    def __init__(self, history: FrameBuffer, **kwargs):
        super().__init__(**kwargs)
        self.history = history
        self.border_title = self.TITLE
        self._lines: list[Strip] | None = None
        self._built_for = None          # the size the lines were built for
        self._key = None
        self._base: Style | None = None       # the theme's background (None: read it at the next build)
        self._blank: Strip | None = None
        self._blank_base: Style | None = None
        self._raw: list[Strip] | None = None  # the lines as built, before the theme's colours
        self._style_for = None          # (remap, base) the lines were restyled for
        self._styles: dict = {}         # restyle's cache for them
        self._pass_size = None

    def _title(self, title: str) -> None:
        """Change the border title (only when it differs: setting it redraws the panel)."""
        if self.border_title != title:
            self.border_title = title

    def cache_key(self, history: FrameBuffer):
        """What the panel's picture depends on; it is rebuilt only when this changes."""
        return history.version

    def show(self, history: FrameBuffer) -> None:
        """Rebuild when ``cache_key`` changed; a shown panel repaints only the lines that differ."""
        k = self.cache_key(history)
        if k == self._key:
            return
        self._key = k
        old, lines = self._raw, self._lines
        if lines is None or old is None or not self.display or not self.is_mounted:
            self.restyle()
            return
        size = self.size
        if self._built_for != size or self._style_for != self._theme_style():
            self.restyle()
            return
        new = self._built(size.width, size.height)
        if len(new) != len(old):
            self.restyle()
            return
        changed = [y for y, (a, b) in enumerate(zip(old, new)) if a != b]
        if not changed:
            return
        self._raw = new
        lines = list(lines)
        remap, base = self._style_for
        for y, strip in zip(changed, restyle([new[y] for y in changed], remap, base, self._styles)):
            lines[y] = strip
        self._lines = lines
        # only these lines go through Textual's styling, the compositor and the terminal
        self.refresh(*_line_regions(changed, size.width))

    def restyle(self) -> None:
        """Drop the lines and repaint the whole panel (a new size, theme or scale)."""
        self._lines = self._raw = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base = None           # the theme's background is read again at the next build

    def build(self, width: int, height: int) -> list[Strip]:
        raise NotImplementedError

    def _built(self, w: int, h: int) -> list[Strip]:
        try:
            return self.build(w, h) if w > 0 and h > 0 else []
        except Exception as exc:  # noqa: BLE001 - a panel that cannot draw says why; the app goes on
            return self.message(cannot_draw(self.history.latest, exc), w, h, "red")

    def _theme_style(self) -> tuple:
        """(the theme's chart colours, the theme's background under every cell: a light theme needs it)."""
        if self._base is None:
            self._base = self.rich_style
        return getattr(self.app, "chart_remap", None), self._base

    def _finished(self, w: int, h: int) -> list[Strip]:
        """``build``'s lines in the theme's colours, on the theme's background (one new Strip a line)."""
        self._raw = lines = self._built(w, h)
        style_for = self._theme_style()
        if style_for != self._style_for:
            self._style_for, self._styles = style_for, {}
        remap, base = style_for
        if self._blank is None or self._blank.cell_length != w or self._blank_base is not base:
            self._blank, self._blank_base = Strip.blank(w, base), base
        return restyle(lines, remap, base, self._styles)

    def render_lines(self, crop):
        self._pass_size = self.size     # one size for the lines of this pass (Widget.size is not free)
        try:
            return super().render_lines(crop)
        finally:
            self._pass_size = None

    def render_line(self, y: int) -> Strip:
        size = self._pass_size or self.size
        if self._lines is None or self._built_for != size:
            self._built_for = size
            self._lines = self._finished(size.width, size.height)
        if y < len(self._lines):
            return self._lines[y]
        return self._blank

    def message(self, text: str, width: int, height: int, color: str = "axis") -> list[Strip]:
        """A panel that has nothing to plot says why, wrapped and centred vertically."""
        lines = wrap(text, max(width - 2, 8))
        top = max((height - len(lines)) // 2, 0)
        out = [Strip.blank(width)] * top
        out += [text_strip([(" " + ln, color)], width) for ln in lines]
        return out[:height]
