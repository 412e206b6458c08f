"""The variance probe in the app (v, and the palette), and `--record` from tick 0 with the runner's thread.

Probe tests drive the app without a thread (as tests/app/test_app_keys.py does):
the key's probe runs at once between the steps the test takes itself.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
import time
import tomllib

import pytest
from support.app import Driver, drive, palette, panel_text

from bsim import actions
from bsim.app.app import BsimApp
from bsim.app.format import num
from bsim.app.screens import help_text
from bsim.cli import main
from bsim.scenario import find_scenario
from bsim.simulation import Simulation

NOTICE = re.compile(r"probe at step (\d+): (\d+) batches at B=(\d+), mean \|g_B - G\|\^2 = (\S+) ± (\S+), "
                    r"predicted (\S+) \(ratio (\S+) ± (\S+)\)")


def test_v_probes_shows_the_point_and_leaves_the_trajectory_bit_identical(tmp_path):
    sc = find_scenario("default")

    async def script(d: Driver):
        await d.steps(100)
        await d.press("v")
        m = NOTICE.fullmatch(d.notice)
        assert m, d.notice
        res = d.sim.noise_stats.probe_result
        assert (int(m[1]), int(m[2]), int(m[3])) == (100, 64, 8) == (res.step, res.batches, res.batch_size)
        assert float(m[4]) == float(f"{res.grad_noise_mean:.4g}") and float(m[6]) == float(f"{res.predicted:.4g}")
        assert float(m[8]) == float(f"{res.grad_noise_se / res.predicted:.2g}")     # the ratio's se, from 64 batches
        # the frame published right after the key carries the probe, and the variance panel draws it
        assert d.app.history.latest.probe is res
        var = panel_text(d.app, "variance")
        assert "◆ probe" in var and var.count("◆") >= 2                     # legend and the point
        assert f"probe@100 {num(res.grad_noise_mean)}±{num(res.grad_noise_se)}" in var
        await d.steps(50)
        assert "probe@100" in panel_text(d.app, "variance")      # same B, lr, sampling: still shown
        await d.press("right_square_bracket")                      # B 8 -> 16: the probe is stale
        assert "probe" not in panel_text(d.app, "variance")
        assert d.app.history.latest.probe is None
        await d.press("left_square_bracket")
        await d.steps(50)
        return [float(v) for v in d.sim.theta.tolist()], d.app.runner.latest.csv_row()

    _, (theta, row) = drive(tmp_path, script, sc=sc)
    plain = Simulation(sc)                       # the same run without the probe (B 8 -> 16 -> 8 at step 150)
    plain.run(150)
    plain.apply(actions.SetBatchSize(16))
    plain.apply(actions.SetBatchSize(8))
    plain.run(50)
    assert theta == [float(v) for v in plain.theta.tolist()]     # bit for bit
    assert row == plain.frame(timing=False).csv_row()


def test_probe_while_paused_from_the_palette_and_its_mean_matches_the_prediction(tmp_path):
    # Default scenario, seed 0. The probe's mean over K = 64 batches is compared with c_B tr(Sigma) at the
    # same parameters (exact for linreg). |g_B - G|^2 is skewed (a sum of squares), so with 64 batches its
    # sample mean is only roughly normal and its SE is itself estimated: 4 SE keeps a false alarm well
    # below 1e-3 while a factor-2 error in c_B or tr(Sigma) (about 7 SE at this K) still fails. The pooled
    # mean of 8 probes (512 batches, SE about 1/3 as large) must agree within 4 of its SE as well.
    sc = find_scenario("default")

    async def script(d: Driver):
        await d.steps(300)
        await palette(d, "Probe the gradient noise: 64 fresh batches")
        assert d.app.runner.paused and d.sim.step_count == 300
        first = d.sim.noise_stats.probe_result
        assert NOTICE.fullmatch(d.notice) and first.step == 300 and first.batches == 64
        results = [first]
        for _ in range(7):
            await d.press("v")
            results.append(d.sim.noise_stats.probe_result)
        return results

    _, results = drive(tmp_path, script, sc=sc)
    pred = results[0].predicted
    assert pred > 0 and all(r.predicted == pred for r in results)       # same parameters, same prediction
    assert len({r.grad_noise_mean for r in results}) == 8               # fresh batches every time
    assert abs(results[0].grad_noise_mean - pred) < 4 * results[0].grad_noise_se
    pooled = sum(r.grad_noise_mean for r in results) / 8
    pooled_se = sum(r.grad_noise_se ** 2 for r in results) ** 0.5 / 8
    assert abs(pooled - pred) < 4 * pooled_se


def test_help_lists_the_probe_key():
    text = help_text().plain                    # the help screen's text (it scrolls: the keys are below)
    assert re.search(r"^  v +variance probe: 64 fresh batches", text, re.M)
    assert "Press v for a probe" in text


# ------------------------------------------------------------- --record with the runner's thread

class RowsApp(BsimApp):
    """The app with its runner thread; keeps the CSV row of every frame the runner publishes."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.rows: list[list[str]] = []

    def _post_frame(self, frame) -> None:
        self.rows.append(frame.csv_row())
        super()._post_frame(frame)


@pytest.mark.slow
def test_record_flag_with_the_thread_begins_at_tick_zero_and_replays_to_the_same_csv(tmp_path, capsys):
    sc = find_scenario("default")
    rec = tmp_path / "talk.toml"

    async def go():
        app = RowsApp(Simulation(sc), scenario=sc, record=str(rec), timing=False, speed=2000)
        async with app.run_test(size=(120, 36)) as pilot:
            async def until(tick):
                deadline = time.monotonic() + 60
                while app.sim.tick < tick and time.monotonic() < deadline:
                    await pilot.pause(0.02)
            await until(300)
            await pilot.press("right_square_bracket")
            await until(600)
            await pilot.press("q")
        return app

    app = asyncio.run(go())
    assert not [n for n in app.notices if n[0] == "error"], app.notices
    data = tomllib.loads(rec.read_text())
    assert data["recording"]["began_at"] == 0
    [event] = data["timeline"]
    assert event["batch_size"] == 16 and event["at"] >= 300
    final = data["recording"]["final_tick"]
    assert final >= 600
    out = tmp_path / "replay.csv"
    assert main(["replay", str(rec), "--headless", "--no-timing", "--metrics", str(out)]) == 0
    assert capsys.readouterr().err == ""                                 # the check agrees
    replayed = list(csv.reader(io.StringIO(out.read_text())))
    header, by_step = replayed[0], {r[replayed[0].index("step")]: r for r in replayed[1:]}
    assert len(by_step) == final
    live = [r for r in app.rows if r[header.index("step")] != "0"]
    assert len(live) >= 5
    # Every frame the app was shown: the same row byte for byte, except the measured ball radius, an
    # average over a window whose float summation is chunked at frame times (the app's frames fall at other
    # steps than the replay's every-step rows): it may differ in the last digits only.
    radius = header.index("ball_radius")
    for row in live:
        other = by_step[row[header.index("step")]]
        assert other[:radius] + other[radius + 1:] == row[:radius] + row[radius + 1:]
        assert (other[radius] == row[radius] == "") or math.isclose(float(other[radius]), float(row[radius]),
                                                                     rel_tol=1e-12)
