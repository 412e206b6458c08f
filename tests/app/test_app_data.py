"""The data panel (d) and the LSTM's spread chart, through the app."""

from __future__ import annotations

import pytest
from support.app import Driver, drive, panel_text, small

from bsim.app.format import num
from bsim.scenario import find_scenario


def test_d_swaps_the_gradient_panel_for_the_data_and_the_fit(tmp_path):
    async def script(d: Driver):
        await d.steps(200)
        assert d.app.query_one("#gradient").display and not d.app.query_one("#data").display
        await d.press("d")
        await d.steps(1)
        assert d.app.query_one("#data").display and not d.app.query_one("#gradient").display
        f = d.app.history.latest
        text = panel_text(d.app, "data")
        assert "fit at θ" in text and "x₁" in text
        assert f"slope θ₁ {num(f.theta[0])}  θ₁* {num(f.theta_star[0])}" in text
        assert f.runner.data is not None and len(f.runner.data.y) == 200
        await d.press("d")
        await d.steps(1)
        assert d.app.history.latest.runner.data is None      # hidden: the runner stops sending it
        assert d.app.query_one("#gradient").display
    drive(tmp_path, script)


def test_logreg_data_shows_classes_and_the_boundary(tmp_path):
    async def script(d: Driver):
        await d.press("d")
        await d.steps(100)
        text = panel_text(d.app, "data")
        assert "class 0" in text and "class 1" in text and "boundary θ·x = 0" in text
    drive(tmp_path, script, sc=small("logreg"))


@pytest.mark.slow
def test_lstm_data_and_its_spread_chart(tmp_path):
    async def script(d: Driver):
        await d.press("d")
        for _ in range(14):
            await d.steps(50)
        f = d.app.history.latest
        data = panel_text(d.app, "data")
        assert "3 test sequences · rms error" in data and "prediction" in data
        ball = panel_text(d.app, "ball")
        assert f.ball.radius_measured is not None
        assert "rms spread" in ball and f"spread {num(f.ball.radius_measured)}" in ball   # a chart, then its value
        assert sum(ch in "⠁⠂⠄⡀⠈⠐⠠⢀⣀⠤⠒⠉" for ch in ball) > 0                            # a line is drawn
    sc = find_scenario("lstm")
    drive(tmp_path, script, sc=sc)
