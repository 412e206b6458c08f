"""The sweep screen's charts take the Textual theme's colours, as the main app's charts do (issue 11)."""

import asyncio

import pytest
from support.app import Driver, drive
from support.sweep import spec_of, write_small
from textual_plotext import PlotextPlot

from bsim.app.sweep_screen import SweepApp, SweepScreen
from bsim.app.widgets.canvas import COLORS
from bsim.sweep.engines import Progress, run_sweep


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep-theme")
    scenario = write_small(tmp)
    spec = spec_of(scenario, batch_sizes=(1, 4, 16, 64), seeds=(0,), lr_rule="tuned", lr_grid=(0.05, 0.2),
                   target=0.01)
    out = tmp / "s.csv"
    run_sweep(spec, out, workers=1, progress=Progress(1, enabled=False), quiet=True)
    return out


def hex6(colour) -> str:
    r, g, b = colour.get_truecolor()
    return f"#{r:02x}{g:02x}{b:02x}"


def chart_colours(screen) -> tuple[set, set]:
    """(the colours of the plotted marks: braille lines and dots, the grounds) over the four charts, as drawn."""
    marks, grounds = set(), set()
    for plot in screen.query(PlotextPlot):
        for y in range(plot.size.height):
            for seg in plot.render_line(y):
                style = seg.style
                if style is None:
                    continue
                if style.color is not None and any(0x2800 < ord(c) <= 0x28FF or c == "•" for c in seg.text):
                    marks.add(hex6(style.color))
                if style.bgcolor is not None:
                    grounds.add(hex6(style.bgcolor))
    return marks, grounds


def luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance of "#rrggbb"."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_t_switches_the_sweep_charts_to_dark_lines_on_a_light_ground_and_back(sweep_csv):
    async def go():
        app = SweepApp(sweep_csv)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            seen = [(app.theme, *chart_colours(app.screen))]
            for _ in range(2):
                await pilot.press("t")
                await pilot.pause()
                seen.append((app.theme, *chart_colours(app.screen)))
        return seen

    (t0, marks0, grounds0), (t1, marks1, grounds1), (t2, marks2, grounds2) = asyncio.run(go())
    assert (t0, t1, t2) == ("textual-dark", "bsim-projector", "textual-dark")
    # the default theme: bsim's own chart palette (as the main app's charts), on a dark ground
    assert len(marks0) >= 3 and marks0 <= set(COLORS.values()), marks0
    assert len(grounds0) == 1 and luminance(next(iter(grounds0))) < 0.05
    # the projector: a white ground, every line dark enough to read on it (WCAG AA, 4.5:1), none of the old colours
    assert grounds1 == {"#ffffff"}
    assert len(marks1) >= 3 and not marks1 & marks0, marks1
    assert all(contrast(c, "#ffffff") >= 4.5 for c in marks1), marks1
    # and back
    assert marks2 == marks0 and grounds2 == grounds0


def test_the_sweep_screen_in_the_app_follows_the_projector_key(tmp_path, sweep_csv):
    async def script(d: Driver):
        d.app.push_screen(SweepScreen(sweep_csv))
        await d.pilot.pause()
        before = chart_colours(d.app.screen)
        await d.press("t")                       # the app's key, from the sweep screen
        return d.app.theme, before, chart_colours(d.app.screen)

    _, (theme, (marks0, _grounds0), (marks1, grounds1)) = drive(tmp_path, script)
    assert theme == "bsim-projector"
    assert marks0 <= set(COLORS.values()) and marks1 and not marks1 & marks0
    assert grounds1 == {"#ffffff"} and all(contrast(c, "#ffffff") >= 4.5 for c in marks1)
