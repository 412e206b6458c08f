"""The interpolation scenario (least squares, d >= N) in the app and headless: the ball 0, the rate per step
at the batch size in force, m* beside it (issue 23, item 7)."""

from __future__ import annotations

import math

import pytest
from support.app import drive, panel_text
from support.cli import read_rows, run_cli

from bsim.scenario import find_scenario


@pytest.mark.slow       # the app under the pilot: ~5 s
def test_the_ball_panel_shows_ball_zero_the_rate_at_each_batch_size_and_m_star(tmp_path):
    async def script(d):
        await d.steps(200)
        one = panel_text(d.app, "ball"), d.sim.frame(timing=False).ball
        await d.press("right_square_bracket")          # B = 2, lr 0.08 (linear scaling)
        await d.steps(50)
        return one, (panel_text(d.app, "ball"), d.sim.frame(timing=False).ball)
    _app, ((text1, ball1), (text2, ball2)) = drive(tmp_path, script, sc=find_scenario("interpolation"))
    assert ball1.radius_theory == 0.0 and 0 < ball2.rate < ball1.rate < 1     # a bigger B (and lr): faster
    for text, ball, b in ((text1, ball1, 1), (text2, ball2, 2)):
        flat = " ".join(text.split())
        assert "ball 0 exact" in flat and f"E|e|² ×{ball.rate:.4g}/step" in flat, flat
        assert f"m* {ball.critical_batch:.3g}" in flat and f"B {b}" in flat and "exact, iid" in flat
        # the rate per B, lr following the linear scaling: steps per e-fold halve with B until the lr is unstable
        rates = dict(ball.rates)
        assert rates[b] == ball.rate and rates[16] is None and rates[24] is None
        efold = {k: -1 / math.log(r) for k, r in rates.items() if r is not None}
        assert [k for k in efold] == [1, 2, 4, 8] and all(1.9 < efold[k] / efold[2 * k] < 2.1 for k in (1, 2, 4))
        assert " ".join(f"{k}:{efold[k]:.0f}" for k in efold) + " 16:✗ 24:✗" in flat


def test_a_headless_run_writes_ball_zero(tmp_path, capsys):
    out = tmp_path / "m.csv"
    ran = run_cli(capsys, "run", "interpolation", "--headless", "--steps", "40", "--every", "20", "--no-timing",
                  "--metrics", out)
    assert ran.code == 0, ran.err
    rows = read_rows(out)
    assert [r["ball_radius_theory"] for r in rows] == ["0.0", "0.0"] and rows[-1]["ball_theory"] == "exact"
    assert float(rows[-1]["dist_to_opt"]) < float(rows[0]["dist_to_opt"])
