"""A landscape's loss goes below 0 (the wells: U = 0 at the saddle, the minima below) or reaches it (the
non-uniform minima): the loss charts of the run and of the race draw it on a linear axis by default, say why, and
`y` still switches to log, where the losses <= 0 are counted as not drawn."""

from __future__ import annotations

import re

import numpy as np
import pytest

from support.app import drive
from support.race import drive_race, race_of

from bsim.app.format import num
from bsim.app.history import FrameBuffer
from bsim.app.race.history import RaceHistory
from bsim.app.race.table import RaceTable
from bsim.app.widgets.landscape import LandscapePanel
from bsim.app.widgets.loss import LossPanel
from bsim.scenario import find_scenario
from bsim.simulation import Simulation


def dots(text: str) -> int:
    """The braille cells of a chart with at least one dot: what the chart has drawn."""
    return sum(1 for ch in text if 0x2801 <= ord(ch) <= 0x28FF)


#: the title of a linear axis chosen because the loss goes below 0 (long or short)
LINEAR_BELOW_0 = re.compile(r"loss, linear \(y\): (it goes below 0|< 0)")


def escape(chains: int = 8):
    sc = find_scenario("escape")
    sc.problem.n_train, sc.chains = 256, chains
    return sc


def test_the_loss_of_a_landscape_is_drawn_on_a_linear_axis_and_y_still_switches_to_log(tmp_path):
    async def script(d):
        for _ in range(6):
            await d.steps(10)
        linear = d.panel("loss")
        await d.press("y")
        log = d.panel("loss")
        await d.press("y")
        return d.app.history.latest, linear, log, d.panel("loss")

    _app, (f, linear, log, back) = drive(tmp_path, script, sc=escape())
    assert f.train_loss < 0                      # the chains sit in the sharp basin, 0.4 below the saddle
    assert LINEAR_BELOW_0.search(linear) and dots(linear) >= 20, linear
    assert "loss, log (y)" in log and "≤0 not drawn" in log and dots(log) <= 2, log
    assert "loss, linear (y)" in back and not LINEAR_BELOW_0.search(back) and dots(back) >= 20, back
    assert f"K=8 {num(f.chains_train_loss_q10)} to {num(f.chains_train_loss_q90)}" in linear, linear   # not "-0.4--0.39"


@pytest.mark.slow      # two lanes under the pilot: ~5 s
def test_the_race_loss_chart_draws_every_lane_of_a_landscape(tmp_path):
    async def script(d):
        for _ in range(6):
            await d.steps(40, chunk=20)
        linear = d.panel("race-loss")
        await d.press("y")
        return d.app.history.latest, linear, d.panel("race-loss")

    _app, (race, linear, log) = drive_race(tmp_path, script, race=race_of("escape", (4, 256), n_train=256, chains=4))
    assert all(lane.frame.train_loss < 0 for lane in race.lanes)
    assert LINEAR_BELOW_0.search(linear) and dots(linear) >= 20, linear
    assert "B=4" in linear and "B=256" in linear
    assert "loss, log (y)" in log and "≤0 not drawn" in log, log


def test_the_non_uniform_minima_reach_a_loss_of_0_and_are_drawn_on_a_linear_axis():
    """sharp-flat at B = 64: every example's quadratic has its minimum at c_0, so SGD reaches L = 0 exactly,
    which a log axis leaves out; the linear axis draws it and says why."""
    sc = find_scenario("sharp-flat")
    sc.problem.n_train, sc.chains, sc.timeline = 128, 1, []
    sim, buffer = Simulation(sc, stats=False), FrameBuffer()
    for _ in range(30):
        for _ in range(10):
            sim.step()
        buffer.add(sim.frame(timing=False))
    panel = LossPanel(buffer)
    linear = "\n".join(s.text for s in panel.build(60, 14))
    assert buffer.latest.train_loss == 0.0
    assert "loss, linear (y): it reaches 0" in linear and dots(linear) >= 20, linear
    assert "e-14" not in linear and "e-13" not in linear, linear      # a readable axis around a flat 0
    panel.log_scale = True              # what y chooses: the log axis
    log = "\n".join(s.text for s in panel.build(60, 14))
    assert "loss, log (y)" in log and "≤0 not drawn" in log, log


def test_the_race_table_of_a_landscape_shows_the_basin_and_the_escapes_instead_of_a_ball():
    """escape, B = 1 against B = 256: each lane's share of the chains in the sharp basin (counted here from the
    lane's chain_basin), the chains that left and the measured escape rate; no ball radius, test loss or accuracy."""
    race = race_of("escape", (1, 256), n_train=256, chains=32)
    history = RaceHistory()
    for _ in range(4):
        for _ in range(50):
            race.step()
        history.add(race.frame(timing=False))
    text = "\n".join(s.text for s in RaceTable(history, frozen_rates=True).build(120, 6))
    assert "in start basin" in text and "left" in text and "escape/step meas" in text, text
    assert "ball radius" not in text and "test acc" not in text and "test loss" not in text, text
    for lane in history.order:
        land = lane.latest.frame.landscape
        share = float(np.mean(np.asarray(land.chain_basin) == 0))
        row = next(ln for ln in text.splitlines() if f"B={lane.batch_size} " in ln)
        assert f"sharp {100 * share:.0f}%" in row and f" {land.escaped} " in row, (row, text)


def test_the_basins_names_stay_apart_on_a_narrow_landscape():
    """sharp-flat's 1-D chart at 80x24 (38 cells): 'non-uniform' and 'uniform' centred over minima 2 apart
    ran together ('non-uniformuniform'); each stays a word of its own."""
    sc = find_scenario("sharp-flat")
    sc.problem.n_train, sc.chains, sc.timeline = 128, 8, []
    sim, buffer = Simulation(sc, stats=False), FrameBuffer()
    sim.step()
    buffer.add(sim.frame(timing=False))
    for width in (30, 38, 44):
        text = "\n".join(s.text for s in LandscapePanel(buffer).build(width, 9))
        assert "non-uniformuniform" not in text, (width, text)
        on_curve = [ln for ln in text.splitlines()[1:3] if "non-uniform" in ln]
        assert on_curve and {"non-uniform", "uniform"} <= set(on_curve[0].split()), (width, text)
