"""chains_ball_radius_epoch: the ensemble's ball over whole epochs, free of the epoch's phase.

Under shuffle with 4 batches an epoch (B = 256, N = 1024) the ensemble's ball at
one step swings with the step's place in the epoch (the batch noise sums to zero
over an epoch); averaged over the steps of whole epochs it is steady, and it is
what the reshuffled prediction (an average over the epoch's positions) and an
independent ensemble measure.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from bsim.cli import main
from bsim.ensemble.epoch_window import WINDOW_STEPS
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.ball import predict_ball, quad_model
from bsim.stats.chains import measure_ball


def column(rows, name):
    return np.array([float(r[name]) if r[name] else math.nan for r in rows])


@pytest.mark.slow
def test_the_epoch_averaged_radius_is_steady_and_on_the_prediction(tmp_path):
    out = tmp_path / "c.csv"
    assert main(["run", "default", "--headless", "--chains", "64", "--batch-size", "256", "--steps", "2000",
                 "--every", "1", "--no-timing", "--device", "cpu", "--metrics", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    sim = Simulation(apply_overrides(find_scenario("default"), batch_size=256, device="cpu"), stats=False)
    burn_in = predict_ball(quad_model(sim.problem), 256, 0.05, 0.0, "shuffle").burn_in
    step = column(rows, "step")
    after = step > burn_in
    epoch = column(rows, "chains_ball_radius_epoch")[after]
    at_step = column(rows, "chains_ball_radius")[after]
    theory = column(rows, "ball_radius_theory")[after]
    assert np.isfinite(epoch).all() and len(epoch) > 1000
    # the per-step radius swings with the phase: just after an epoch ends it is a fraction of mid-epoch
    phase = step[after] % 4
    assert at_step[phase == 0].mean() < 0.4 * at_step[phase == 2].mean()
    # the epoch average does not: under 10% from row to row (it is under 1%), and steady overall
    assert np.max(np.abs(np.diff(epoch)) / epoch[:-1]) < 0.10
    assert epoch.std() / epoch.mean() < 0.05
    assert abs(epoch.mean() / theory[-1] - 1) < 0.05
    # an independent ensemble (its own sampler and loop, from theta*): the mean square over whole epochs
    ms, se = measure_ball(sim.problem, 256, 0.05, 0.0, "shuffle", chains=256, burn_in=burn_in, steps=400, seed=7)
    assert abs(np.mean(epoch ** 2) - ms) < 3 * se + 0.02 * ms


def stepped(sim, steps):
    """Frames of ``steps`` single steps."""
    out = []
    for _ in range(steps):
        sim.step()
        out.append(sim.frame(timing=False))
    return out


def test_the_window_restarts_at_a_change_and_averages_whole_epochs_of_every_chain():
    sim = Simulation(apply_overrides(find_scenario("default"), batch_size=256, lr=0.2, chains=8, device="cpu"))
    frames = stepped(sim, WINDOW_STEPS + 8)
    assert frames[WINDOW_STEPS - 2].chains_ball_radius_epoch is None       # 127 steps: no whole window yet
    assert frames[WINDOW_STEPS - 1].chains_ball_radius_epoch is not None
    sim.set_batch_size(128)                    # at an epoch's end (136 steps of 4 an epoch): 8 steps an epoch now
    frames = stepped(sim, WINDOW_STEPS)
    assert all(f.chains_ball_radius_epoch is None for f in frames[:-1])
    star = sim.problem.theta_star.numpy()
    # by hand: the mean over the 8 chains and the 128 steps since the change of |theta_k - theta*|^2
    mean_square = np.mean([((f.chains_theta - star) ** 2).sum(1).mean() for f in frames])
    assert frames[-1].chains_ball_radius_epoch == pytest.approx(math.sqrt(mean_square), rel=1e-9)
    # the next epoch slides the window by one epoch: 8 steps later it holds the last 128 steps
    frames += stepped(sim, 8)
    mean_square = np.mean([((f.chains_theta - star) ** 2).sum(1).mean() for f in frames[-WINDOW_STEPS:]])
    assert frames[-1].chains_ball_radius_epoch == pytest.approx(math.sqrt(mean_square), rel=1e-9)
    for change in (lambda: sim.set_lr(0.1), lambda: sim.set_momentum(0.5), lambda: sim.set_sampling("iid"),
                   sim.reset, lambda: sim.set_chains(16)):
        change()
        assert stepped(sim, 1)[0].chains_ball_radius_epoch is None
