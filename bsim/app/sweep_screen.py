"""The sweep screen: a saved sweep's steps and examples against B and its learning curves (and, for a
tuned lr, the best lr against B beside them).

Opened from the command palette ("Open sweep results...") or by
``bsim sweep --show sweep.csv --app``. It draws the same figures as the
terminal (bsim.sweep.plots) into textual-plotext widgets, and reloads the CSV
on r, so a sweep still running can be watched. A file that is not a sweep is
a notice on the screen, never a crash. The report keeps a few lines (it
scrolls); the four charts share the rest of the height. ctrl+s saves the
screen as SVG into screenshots/. The charts take the Textual theme's colours
(bsim.app.themes, as the main app's charts do) and are drawn again when it changes.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from bsim.app import keymap, themes
from bsim.app.base import AppBase, run_themed
from bsim.errors import BsimInputError

#: the data colours of a sweep chart, in plotext's order of use (the dots, the fit, the labels; a curve per B)
SERIES = ("blue", "orange", "green", "red", "purple", "yellow")


def plot_theme(app) -> str:
    """The name of a plotext theme in the app's Textual theme colours, registered with plotext.

    The canvas is the theme's surface, the ticks and guide lines its axis colour, the series
    ``SERIES`` of its chart palette (bsim's own under the default theme), so a light theme gets
    dark lines on a light ground. plotext has no public call to add a theme: its table of themes
    (``plotext._dict.themes``, the one textual-plotext adds to) is reached here only.
    """
    from plotext._dict import themes as plotext_themes
    from rich.color import Color as RichColor

    from bsim.app.widgets.canvas import COLORS

    variables = app.get_css_variables()
    palette = themes.chart_palette(app.theme, variables) or COLORS

    def rgb(text: str) -> tuple[int, int, int]:
        return tuple(RichColor.parse(text).get_truecolor())

    surface = rgb(themes.solid(variables.get("surface"), variables.get("background")))
    name = f"bsim-sweep-{app.theme}"
    plotext_themes[name] = (surface, surface, rgb(palette["axis"]), "default", [rgb(palette[c]) for c in SERIES])
    return name


class SweepPlot(PlotextPlot):
    """A chart whose figure is drawn afresh at every render, at the panel's size and in its plotext theme.

    plotext's build puts the data on the log scale in place: a second render of one drawing (a theme's
    or a layout's refresh) would take the log twice and fail. Owns only its figure function.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.figure = None      # (plt, width, height) -> None: draws the chart into plt

    def render(self):
        if self.figure is not None:
            plt = self.plt
            plt.clear_data()
            plt.clear_figure()
            plt.theme(self.theme)      # the series' colours are chosen as each is drawn
            width, height = self.size
            self.figure(plt, width or 60, height or 20)
        return super().render()


class SweepScreen(Screen):
    """Four panels: S against B, E against B, the train curves, the test curves; the report above.

    Owns its widgets and the loaded sweep (``summary``, ``curves``); writes only SVG screenshots."""

    BINDINGS = keymap.bindings(keymap.SWEEP)
    REPORT_LINES = 4     # the report's height on screen; the rest scrolls
    DEFAULT_CSS = f"""
    SweepScreen #sweep-report-box {{ height: auto; max-height: {REPORT_LINES}; padding: 0 1; }}
    SweepScreen #sweep-report {{ height: auto; }}
    SweepScreen #sweep-notice {{ height: 1; padding: 0 1; }}
    SweepScreen #sweep-notice.-error {{ color: $error; }}
    SweepScreen .sweep-row {{ height: 1fr; }}
    SweepScreen PlotextPlot {{ width: 1fr; height: 1fr; }}
    """

    def __init__(self, path: str | Path, standalone: bool = False):
        super().__init__()
        self.path = Path(path)
        self.standalone = standalone     # closing it quits (bsim sweep --show --app)
        self.summary = None
        self.curves: dict = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(id="sweep-report-box"):
                yield Static("", id="sweep-report")
            with Horizontal(classes="sweep-row", id="sweep-first-row"):
                yield SweepPlot(id="sweep-steps")
                yield SweepPlot(id="sweep-samples")
            with Horizontal(classes="sweep-row"):
                yield SweepPlot(id="sweep-train")
                yield SweepPlot(id="sweep-test")
            yield Static("", id="sweep-notice")
        yield Footer()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.draw())
        self.action_reload()

    def action_reload(self) -> None:
        from bsim.sweep import load_sweep
        from bsim.sweep.plots import REGIMES_CAPTION
        report = self.query_one("#sweep-report", Static)
        try:
            summary, curves = load_sweep(self.path)
        except BsimInputError as exc:
            report.update(Text.assemble(("cannot show the sweep", "bold"), f": {exc}"))
            self.summary = None
            return
        self.summary, self.curves = summary, curves
        tuned = summary.best_lr() is not None
        if tuned and not self.query("#sweep-best-lr"):
            self.query_one("#sweep-first-row").mount(SweepPlot(id="sweep-best-lr"))
        elif not tuned:
            self.query("#sweep-best-lr").remove()
        report.update(Text("\n".join(summary.lines() + [REGIMES_CAPTION])))   # plain text: no markup
        self.draw()

    def draw(self) -> None:
        """Give the four charts their figures (each drawn at its panel's size, in the theme's colours)."""
        from bsim.sweep.plots import draw_best_lr, draw_curves, draw_tradeoff
        summary, curves = self.summary, self.curves
        if summary is None:
            return
        panels = {"#sweep-steps": lambda p, w, h: draw_tradeoff(p, summary, "steps", w, h),
                  "#sweep-samples": lambda p, w, h: draw_tradeoff(p, summary, "samples", w, h),
                  "#sweep-train": lambda p, w, h: draw_curves(p, summary, curves, "train"),
                  "#sweep-test": lambda p, w, h: draw_curves(p, summary, curves, "test"),
                  "#sweep-best-lr": lambda p, w, h: draw_best_lr(p, summary, w, h)}
        theme = plot_theme(self.app)
        for sel, draw in panels.items():
            if not self.query(sel):
                continue                      # the best lr's chart: a tuned sweep only
            widget = self.query_one(sel, SweepPlot)
            widget.figure = draw
            widget.theme = theme            # the ground and the ticks at render time
            widget.refresh()

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw)

    def action_save_svg(self) -> None:
        """ctrl+s: this screen as SVG into the app's screenshots folder (bsim.app.base.AppBase.screenshot)."""
        kind, text = self.app.screenshot("bsim-sweep")
        self.notice(text, error=kind == "error")

    def notice(self, text: str, error: bool = False) -> None:
        """One line under the charts (the app's own notice bar is on the screen below this one)."""
        bar = self.query_one("#sweep-notice", Static)
        bar.set_class(error, "-error")
        bar.update(Text(text, no_wrap=True, overflow="ellipsis"))     # as written: no markup; one line

    def action_close(self) -> None:
        if self.standalone:
            self.app.exit(0)
        else:
            self.app.pop_screen()


def open_sweep(app, path: str | None) -> None:
    """Push the sweep screen for ``path`` (the answer of the palette's question; None: cancelled)."""
    if path is None or not path.strip():
        return
    app.push_screen(SweepScreen(path.strip()))


def palette_commands(app):
    """The palette entry: ask for a sweep CSV, then open its screen."""
    def ask():
        app.ask("Sweep CSV to show (written by bsim sweep --out):", lambda p: open_sweep(app, p), value="sweep.csv")
    yield SystemCommand("Open sweep results...", "steps and examples to a target against B, from a sweep CSV", ask)


class SweepApp(AppBase):
    """The sweep screen on its own (``bsim sweep --show PATH --app``): its keys, and t for the projector theme.

    Notices (the projector theme's) go to the sweep screen's own line; no runner, no too-small check."""

    BINDINGS = keymap.bindings(keymap.SWEEP_APP)
    NEEDS = None

    def __init__(self, path: str | Path, screenshots_dir: str | Path = "screenshots"):
        super().__init__(screenshots_dir=screenshots_dir)
        self.path = path

    def start(self) -> None:
        self.push_screen(SweepScreen(self.path, standalone=True))

    def _notice(self, kind: str, text: str) -> None:
        self.notices.append((kind, text))
        if isinstance(self.screen, SweepScreen):
            self.screen.notice(text, error=kind == "error")


def run_sweep_app(path: str | Path) -> int:
    return run_themed(SweepApp(path), None)
