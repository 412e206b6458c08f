"""The sweep screen: opened from the app's command palette, and on its own for `bsim sweep --show --app`."""

import asyncio
import re

import pytest
from rich.console import Console
from support.app import Driver, drive, palette
from support.sweep import spec_of, write_small
from textual.widgets import Input, Static
from textual_plotext import PlotextPlot

from bsim.app.compositor import screen_update
from bsim.app.screens import AskScreen
from bsim.app.sweep_screen import SweepApp, SweepScreen
from bsim.sweep.engines import Progress, run_sweep

pytestmark = pytest.mark.slow      # a sweep in a process pool first, shared by the module's tests


def saved_sweep(tmp_path):
    scenario = write_small(tmp_path)
    spec = spec_of(scenario, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128), seeds=(0, 1), lr_rule="tuned",
                   lr_grid=(0.0125, 0.05, 0.2, 0.8), target=0.01)
    out = tmp_path / "s.csv"
    run_sweep(spec, out, workers=2, progress=Progress(1, enabled=False), quiet=True)
    return out


@pytest.fixture(scope="module")
def shared_sweep(tmp_path_factory):
    """One saved sweep for the tests that only read it."""
    return saved_sweep(tmp_path_factory.mktemp("sweep"))


def screen_text(app) -> str:
    console = Console(width=app.size.width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(screen_update(app))
    return console.export_text()


def test_the_palette_opens_a_saved_sweep_and_escape_goes_back(tmp_path, shared_sweep):
    csv_path = shared_sweep

    async def script(d: Driver):
        await palette(d, "Open sweep results...")
        assert isinstance(d.app.screen, AskScreen)
        d.app.screen.query_one(Input).value = str(csv_path)
        await d.press("enter")
        screen = d.app.screen
        assert isinstance(screen, SweepScreen)
        report = str(screen.query_one("#sweep-report", Static).render())
        plots = len(screen.query(PlotextPlot))
        await d.press("ctrl+s")                  # the sweep screen's own ctrl+s, into the app's screenshots folder
        saved = sorted(p.name for p in (tmp_path / "screenshots").glob("*.svg"))
        await d.press("escape")
        return screen.summary, report, plots, type(d.app.screen).__name__, saved

    _, (summary, report, plots, after, saved) = drive(tmp_path, script)
    assert len(saved) == 1 and saved[0].startswith("bsim-sweep-")
    assert summary is not None and len(summary.per_b) == 8
    assert "sweep of small" in report and ("B_crit" in report or "no fit" in report)
    assert plots == 5 and after != "SweepScreen"        # a tuned sweep: its best lr's chart too


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


def run_sweep_app(path, size=(120, 40), keys=(), **kw):
    """The standalone sweep screen at ``size``: its text, the charts' sizes and the report box's height."""
    async def go():
        app = SweepApp(path, **kw)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            await pilot.pause(0.2)               # the notice's toast is mounted a moment later
            charts = {w.id: tuple(w.size) for w in app.screen.query(PlotextPlot)}
            box = app.screen.query_one("#sweep-report-box")
            return screen_text(app), charts, (box.size.height, box.scroll_y)
    return asyncio.run(go())


def test_the_charts_fill_the_height_and_the_report_keeps_four_lines(shared_sweep):
    text, charts, (box, scrolled) = run_sweep_app(shared_sweep, size=(120, 40))
    assert box == 4 and scrolled == 0                   # the 16-line report within 4 lines, from its top
    assert "sweep of small" in text and "maximal data parallelism" not in text
    # 40 rows - the footer - the report: two rows of charts of 17 or 18 rows each
    assert all(h >= 17 for _, h in charts.values()), charts
    # a tuned sweep: S, E and the best lr against B side by side, then the two curves
    assert [charts[k][0] for k in ("sweep-steps", "sweep-samples", "sweep-best-lr")] == [40, 40, 40], charts
    assert [charts[k][0] for k in ("sweep-train", "sweep-test")] == [60, 60], charts
    assert text.count("batch size B") == 3 and text.count("steps to the target") == 0
    assert text.count("best lr against B") == 1
    assert text.count("steps S to the target") == 1 and text.count("examples E to the target") == 1


def test_the_learning_curves_have_a_legend_of_batch_sizes(shared_sweep):
    text, _, _ = run_sweep_app(shared_sweep, size=(120, 40))
    for b in (1, 2, 8, 16, 64, 128):                   # six batch sizes of the eight, first and last kept
        assert len(re.findall(rf"B={b}\b", text)) == 2, b   # in the legend of the train and of the test chart


def test_the_marks_labels_on_the_screen_do_not_run_together(shared_sweep):
    text, _, _ = run_sweep_app(shared_sweep, size=(100, 36))
    label = re.compile(r"(B_crit|B_noise|B_simple)=[0-9.e+]+|perfect scaling|max parallel")
    assert "B_crit=" in text
    for line in text.splitlines():
        spans = [m.span() for m in label.finditer(line)]
        assert all(end < start for (_, end), (start, _) in zip(spans, spans[1:])), line


def test_ctrl_s_saves_the_sweep_screen_as_svg(tmp_path, shared_sweep):
    shots = tmp_path / "shots"
    text, _, _ = run_sweep_app(shared_sweep, keys=("ctrl+s",), screenshots_dir=shots)
    saved = list(shots.glob("*.svg"))
    assert len(saved) == 1 and saved[0].read_text().lstrip().startswith("<svg")
    assert "steps&#160;S&#160;to&#160;the&#160;target" in saved[0].read_text()
    assert f"screenshot saved: {saved[0].name} in" in text


def test_ctrl_s_into_an_unwritable_folder_is_a_notice(tmp_path, shared_sweep):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    text, _, _ = run_sweep_app(shared_sweep, keys=("ctrl+s",), screenshots_dir=blocker / "shots")
    assert "cannot write the screenshot" in text
    assert blocker.read_text() == "not a folder"


def test_the_rest_of_the_report_scrolls_into_view(shared_sweep):
    text, _, (box, scrolled) = run_sweep_app(shared_sweep, size=(120, 40), keys=("end",))
    assert box == 4 and scrolled > 0
    assert "maximal data parallelism" in text and "sweep of small" not in text   # the caption, the report's end
