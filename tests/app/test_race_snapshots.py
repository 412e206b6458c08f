"""Snapshots of the race screen (pytest-textual-snapshot) at 120x36, 100x30 and 80x24.

The race is paused and stepped from the test (no thread; a frame every 50 lane steps in the
lockstep's order) and wall-clock numbers are left out (timing off), so the picture depends on
nothing but the scenario, the lanes and the steps.
Update after an intended change of the screen: pytest tests/app/test_race_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from bsim.app.race.app import RaceApp
from support.race import race_of

pytestmark = pytest.mark.slow      # each snapshot: thousands of lane steps, then the screen as SVG


def race_app_after(tmp_path, name: str, sizes, lane_steps: int):
    """The race screen on a bundled scenario (its full data) after ``lane_steps`` lane steps."""
    app = RaceApp(race_of(name, sizes, n_train=None), threaded=False, paused=True, timing=False,
                  screenshots_dir=tmp_path, recordings_dir=tmp_path)

    async def run_before(pilot):
        for _ in range(lane_steps // 50):
            app.runner.advance(50)
            await pilot.pause()
        await pilot.pause()

    return app, run_before


@pytest.mark.parametrize("size", [(120, 36), (100, 30), (80, 24)], ids=["120x36", "100x30", "80x24"])
def test_race_screen(snap_compare, tmp_path, size):
    app, run_before = race_app_after(tmp_path, "default", (8, 64, 512), 3000)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_race_of_logistic_regression_shows_accuracy_120x36(snap_compare, tmp_path):
    app, run_before = race_app_after(tmp_path, "logreg", (8, 32, 128, 512), 2000)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
