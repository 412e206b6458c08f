"""Snapshots of the main screen (pytest-textual-snapshot) on fixed seeds.

The simulation is stepped from the test (no thread) and rates are not shown
(timing off), so the picture depends on nothing but the scenario and the steps.
Update after an intended change of the screen: pytest tests/app/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from bsim.app.app import BsimApp
from bsim.scenario import find_scenario
from bsim.simulation import Simulation

pytestmark = pytest.mark.slow      # each snapshot: 3,000 steps, then the screen as SVG


def app_after(tmp_path, name: str, first: int, then: int, keys=("right_square_bracket",)):
    """The app on a bundled scenario: ``first`` steps, the keys, ``then`` more; a frame every 50 steps."""
    app = BsimApp(Simulation(find_scenario(name)), threaded=False, paused=True, timing=False,
                  screenshots_dir=tmp_path, recordings_dir=tmp_path)

    async def run_before(pilot):
        for _ in range(first // 50):
            app.runner.advance(50)
            await pilot.pause()
        await pilot.press(*keys)
        for _ in range(then // 50):
            app.runner.advance(50)
            await pilot.pause()
        await pilot.pause()

    return app, run_before


def test_main_screen_120x36(snap_compare, tmp_path):
    app, run_before = app_after(tmp_path, "default", 1500, 1500)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_main_screen_100x30(snap_compare, tmp_path):
    app, run_before = app_after(tmp_path, "default", 1500, 1500)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_main_screen_80x24(snap_compare, tmp_path):
    app, run_before = app_after(tmp_path, "default", 1500, 1500)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_logistic_regression_120x36(snap_compare, tmp_path):
    app, run_before = app_after(tmp_path, "logreg", 1000, 1000, keys=("s",))
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def test_lstm_says_why_there_is_no_ball_120x36(snap_compare, tmp_path):
    app, run_before = app_after(tmp_path, "lstm", 100, 100, keys=("left_square_bracket",))
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
