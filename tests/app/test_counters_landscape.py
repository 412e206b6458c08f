"""On a landscape the counters' temperature is the tilted wells' T = lr c_B sigma_b^2 / 2 with that formula and the
starting basin's barrier over T, not the ε-ball's lr (N/B - 1)/(1 - m); the non-uniform minima show none."""

from __future__ import annotations

import numpy as np

from bsim.app.format import num
from bsim.app.history import FrameBuffer
from bsim.app.widgets.counters import CountersPanel
from bsim.scenario import find_scenario
from bsim.simulation import Simulation


def counters_text(sc, steps: int, width: int = 34, height: int = 30) -> tuple[str, Simulation]:
    sim = Simulation(sc)
    buffer = FrameBuffer()
    for _ in range(steps):
        sim.step()
    buffer.add(sim.frame(timing=False))
    return "\n".join(s.text for s in CountersPanel(buffer).build(width, height)), sim


def test_the_wells_temperature_is_lr_c_b_sigma_b_squared_over_2_with_its_formula_and_barrier_over_t():
    sc = find_scenario("escape")
    sc.problem.n_train, sc.chains, sc.timeline = 256, 1, []
    sc.optimizer.batch_size = 4
    for width, height in ((34, 30), (24, 30), (24, 15)):     # wide, narrow (80 columns), short (24 rows)
        text, sim = counters_text(sc, 5, width, height)
        tilts = sim.problem.tilts64.ravel()
        temp = 0.05 * (1 / 4) * np.var(tilts) / 2       # lr, c_B = 1/B with replacement, sigma_b^2 = 16
        assert abs(temp - 0.1) < 1e-12
        assert f"{'temp' if width < 28 else 'temperature'}" in text and num(temp) in text, text
        assert "= lr c_B σ_b²/2" in text, text
        assert f"{num(0.4 / temp, 3)} (sharp)" in text and ("barrier/T" in text or "ΔU/T" in text), text
        ball_t = 0.05 * (256 / 4 - 1)                    # the ε-ball's lr (N/B - 1): not this landscape's
        assert num(ball_t) not in text and "N/B" not in text, text


def test_the_nonuniform_minima_show_no_temperature():
    sc = find_scenario("sharp-flat")
    sc.problem.n_train, sc.chains, sc.timeline = 128, 1, []
    text, _sim = counters_text(sc, 3)
    assert "temperature" not in text and "N/B" not in text, text
    assert "step" in text and "batch size" in text
