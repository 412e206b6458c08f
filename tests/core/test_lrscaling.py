"""One lr rule for the app's lr scaling and the sweep's lr rules (bsim.lrscaling)."""

import math

import pytest

from bsim.lrscaling import scaled_lr, scaling_factor
from bsim.scenario import find_scenario
from bsim.simulation import Simulation
from bsim.sweep.spec import SweepSpec


@pytest.mark.parametrize("mode", ["none", "linear", "sqrt"])
def test_the_sweep_trains_each_b_with_the_lr_the_app_scales_to(mode):
    sc = find_scenario("default")
    sc.optimizer.lr_scaling = mode
    base_lr, base_b = sc.optimizer.lr, sc.optimizer.batch_size
    spec = SweepSpec(scenario=sc, scenario_name="default", batch_sizes=(1, 4, 64), target=0.1, lr_rule=mode)
    for b in (1, 4, 64):
        sim = Simulation(sc, stats=False)
        sim.set_batch_size(b)
        (lr,) = spec.lrs_for(b)
        assert lr == pytest.approx(sim.lr, rel=1e-15)
        expected = {"none": base_lr, "linear": base_lr * b / base_b, "sqrt": base_lr * math.sqrt(b / base_b)}[mode]
        assert lr == expected


def test_the_factors_are_the_published_rules():
    assert scaling_factor("none", 64, 8) == 1.0
    assert scaling_factor("linear", 64, 8) == 8.0                    # Goyal et al. 2017
    assert scaling_factor("sqrt", 32, 8) == 2.0
    assert scaled_lr("linear", 0.05, 10, 3) == 0.05 * 10 / 3          # the sweep's rounding, kept for resumes
