"""The sweep screen: opened from the app's command palette, and on its own for `bsim sweep --show --app`."""

import asyncio

from test_app_keys import Driver, drive
from test_app_palette import palette
from test_sweep import SMALL, spec_of
from textual.widgets import Input, Static
from textual_plotext import PlotextPlot

from bsim.app.screens import AskScreen
from bsim.app.sweep_screen import SweepApp, SweepScreen
from bsim.sweep.engines import Progress, run_sweep


def saved_sweep(tmp_path):
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    spec = spec_of(scenario, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128), seeds=(0, 1), lr_rule="tuned",
                   lr_grid=(0.0125, 0.05, 0.2, 0.8), target=0.01)
    out = tmp_path / "s.csv"
    run_sweep(spec, out, workers=2, progress=Progress(1, enabled=False), quiet=True)
    return out


def test_the_palette_opens_a_saved_sweep_and_escape_goes_back(tmp_path):
    csv_path = saved_sweep(tmp_path)

    async def script(d: Driver):
        await palette(d, "Open sweep results...")
        assert isinstance(d.app.screen, AskScreen)
        d.app.screen.query_one(Input).value = str(csv_path)
        await d.press("enter")
        screen = d.app.screen
        assert isinstance(screen, SweepScreen)
        report = str(screen.query_one("#sweep-report", Static).render())
        plots = len(screen.query(PlotextPlot))
        await d.press("escape")
        return screen.summary, report, plots, type(d.app.screen).__name__

    _, (summary, report, plots, after) = drive(tmp_path, script)
    assert summary is not None and len(summary.per_b) == 8
    assert "sweep of small" in report and ("B_crit" in report or "no fit" in report)
    assert plots == 4 and after != "SweepScreen"


def test_the_screen_on_its_own_shows_a_bad_file_as_a_notice(tmp_path):
    bad = tmp_path / "not-a-sweep.csv"
    bad.write_text("a,b\n1,2\n")

    async def go():
        app = SweepApp(bad)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            text = str(app.screen.query_one("#sweep-report", Static).render())
            await pilot.press("q")
            await pilot.pause()
        return text, app.return_value

    text, code = asyncio.run(go())
    assert "cannot show the sweep" in text and "not a bsim sweep CSV" in text
    assert code == 0
