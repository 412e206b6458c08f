"""The ensemble engine: every chain is plain SGD on its own batches; chain 0 is the run; resets,
problem switches and diverging chains.

The reference for a chain is the run's own arithmetic (Problem.loss_and_grad,
v = m v + g, theta -= lr v) replayed on the batches that chain drew, one chain
at a time: for the LSTM that is autograd through the fused kernel, independent
of the ensemble's hand-written backward pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim import actions as A
from bsim.ensemble import lstm as batched_lstm
from bsim.ensemble.sampler import ChainsSampler
from bsim.errors import BsimInputError
from bsim.scenario import Event, apply_overrides, find_scenario
from bsim.simulation import Simulation


def make_sim(name="default", chains=6, stats=False, **overrides):
    sc = apply_overrides(find_scenario(name), chains=chains, device="cpu", **overrides)
    return Simulation(sc, stats=stats)


class Recorder:
    """Wraps the chains' samplers (those of later resets too): keeps every step's (K-1, B) batches and
    the settings of the run's step."""

    def __init__(self, sim, monkeypatch):
        self.sim, self.steps = sim, []
        draw = ChainsSampler.next_batch

        def next_batch(sampler, batch_size):
            idx = draw(sampler, batch_size)
            self.steps.append((idx.clone(), sim.last_lr, sim.momentum))
            return idx
        monkeypatch.setattr(ChainsSampler, "next_batch", next_batch)


def replay_chain(sim, steps, k):
    """Chain k (>= 1) replayed alone with the run's arithmetic."""
    p = sim.problem
    theta = sim.theta0.clone()
    v = torch.zeros_like(theta)
    for idx, lr, momentum in steps:
        _, g = p.loss_and_grad(theta, idx[k - 1])
        v = momentum * v + g if momentum else g
        theta = theta - lr * v
    return theta


SCHEDULE = [  # (step, action): B changes mid-epoch, lr, momentum, sampling
    (7, A.SetBatchSize(13)), (20, A.SetLR(0.03)), (25, A.SetMomentum(0.5)), (31, A.SetBatchSize(100)),
    (40, A.SetSampling("iid")), (52, A.SetSampling("replacement")), (60, A.SetSampling("shuffle")),
    (66, A.SetBatchSize(3)),
]


def run_schedule(sim, steps):
    todo = dict(SCHEDULE)
    for t in range(steps):
        if t in todo:
            sim.apply(todo[t])
        assert sim.step()


@pytest.mark.parametrize("drop_last", [False, True])
def test_each_chain_is_plain_sgd_on_its_own_batches(drop_last, monkeypatch):
    sim = make_sim(chains=5)
    sim.scenario.optimizer.drop_last = drop_last
    sim.reset()                                            # the sampler takes drop_last at a reset
    rec = Recorder(sim, monkeypatch)
    run_schedule(sim, 80)
    assert len(rec.steps) == 80
    for k in range(1, 5):
        expected = replay_chain(sim, rec.steps, k)
        torch.testing.assert_close(sim.ensemble.theta[k - 1], expected, rtol=1e-12, atol=1e-12)
    assert not torch.equal(sim.ensemble.theta[0], sim.theta)               # chains are not the run


def test_lstm_chains_follow_autograd_on_the_fused_kernel(monkeypatch):
    sim = make_sim("lstm", chains=4, batch_size=8)
    rec = Recorder(sim, monkeypatch)
    sim.run(5)
    sim.apply(A.SetMomentum(0.9))
    sim.apply(A.SetBatchSize(5))
    sim.run(5)
    for k in range(1, 4):
        expected = replay_chain(sim, rec.steps, k)
        torch.testing.assert_close(sim.ensemble.theta[k - 1], expected, rtol=1e-4, atol=2e-6)
    f = sim.frame(timing=False)
    assert f.chains == 4 and f.chains_theta is None and f.chains_ball_radius > 0
    losses = torch.stack([sim.problem.train_loss(t) for t in sim.ensemble.live_thetas()])
    assert math.isclose(f.chains_train_loss, float(losses.mean()), rel_tol=1e-5)


def test_lstm_batched_gradient_equals_torch_func_on_the_unrolled_cell():
    sim = make_sim("lstm", chains=2)
    p = sim.problem
    gen = torch.Generator().manual_seed(1)
    theta = sim.theta0 + 0.5 * torch.randn(7, p.n_params, generator=gen)
    idx = torch.randint(p.n_train, (7, 9), generator=gen)

    def loss(th, xb, yb):
        d = p.predict(th, xb) - yb
        return 0.5 * (d * d).mean()
    expected = torch.func.vmap(torch.func.grad(loss))(theta, p.X[idx], p.y[idx])
    got = batched_lstm.batch_grads(p, theta, p.X[idx], p.y[idx])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_frame_columns_describe_the_chains():
    sim = make_sim(chains=8)
    sim.run(50)
    f = sim.frame(timing=False)
    thetas = f.chains_theta
    assert thetas.shape == (8, 2) and np.array_equal(thetas[0], np.array(f.theta))       # row 0 is the run
    star = np.array(f.theta_star)
    assert math.isclose(f.chains_ball_radius, math.sqrt(((thetas - star) ** 2).sum(1).mean()), rel_tol=1e-12)
    X, y = sim.problem.X64, sim.problem.y64
    losses = 0.5 * ((X @ thetas.T - y[:, None]) ** 2).mean(0)
    assert math.isclose(f.chains_train_loss, losses.mean(), rel_tol=1e-12)
    assert f.chains_train_loss_q10 == pytest.approx(np.quantile(losses, 0.1), rel=1e-12)
    assert f.chains_train_loss_q90 == pytest.approx(np.quantile(losses, 0.9), rel=1e-12)
    assert f.chains_dropped == 0 and f.chains_notice == ""


def test_the_run_is_untouched_by_its_chains():
    plain, ens = make_sim(chains=1), make_sim(chains=16)
    assert plain.ensemble is None
    for sim in (plain, ens):
        run_schedule(sim, 70)
    assert torch.equal(plain.theta, ens.theta)
    a, b = plain.frame(timing=False), ens.frame(timing=False)
    assert a.csv_row() == b.csv_row() and a.chains is None and b.chains == 16


def test_reset_restarts_the_chains_on_the_same_draws():
    sim = make_sim(chains=6)
    sim.run(30)
    first = sim.ensemble.theta.clone()
    sim.apply(A.Reset())
    f = sim.frame(timing=False)          # before any step: every chain at theta_0
    assert np.allclose(f.chains_theta, 0.0) and f.chains == 6
    sim.run(30)
    assert torch.equal(sim.ensemble.theta, first)


def test_problem_switch_rebuilds_the_chains():
    sim = make_sim(chains=3)
    sim.run(5)
    sim.apply(A.SwitchProblem("lstm"))
    sim.run(3)
    f = sim.frame(timing=False)
    assert f.problem == "lstm" and f.chains == 3 and f.chains_theta is None
    assert sim.ensemble.theta.shape == (2, sim.problem.n_params)
    sim.apply(A.SwitchProblem("logreg"))
    sim.run(3)
    f = sim.frame(timing=False)
    assert f.chains_theta.shape == (3, 2) and f.chains_ball_radius > 0


def test_timeline_events_reach_the_chains(monkeypatch):
    sc = apply_overrides(find_scenario("default"), chains=4, device="cpu")
    sc.timeline = [Event(at=10, batch_size=64), Event(at=20, reset=True)]
    sim = Simulation(sc, stats=False)
    rec = Recorder(sim, monkeypatch)
    sim.run(15)
    assert [s[0].shape[1] for s in rec.steps] == [8] * 10 + [64] * 5
    sim.run(10)          # the reset at 20 restarts the chains: theta_0 again, then 5 steps at B = 64
    assert sim.ensemble.sampler.samples == sim.sampler.samples == 5 * 64


def test_two_sampling_changes_between_steps_keep_the_chains_in_step():
    sim = make_sim(chains=4, batch_size=10)
    sim.run(7)
    sim.apply(A.SetSampling("iid"))          # and back before the next step: the run abandons its epoch
    sim.apply(A.SetSampling("shuffle"))
    sim.run(250)                             # 1024 = 102 x 10 + 4: short last batches, epochs in step
    s, c = sim.sampler, sim.ensemble.sampler
    assert (s.samples, s.epochs_done, s.pos, s.batch_in_epoch) == (c.samples, c.epochs_done, c.pos, c.batch_in_epoch)
    assert s.epochs_done == 2


def test_diverging_chains_are_dropped_and_the_others_go_on():
    sim = make_sim(chains=10)
    sim.run(5)
    sim.ensemble.theta[[1, 4, 6]] = 1e300    # three chains far out; a few steps at 25x 2 / lambda_max (x ~50
    sim.apply(A.SetLR(50.0))                 # each) overflow them, while the run and the others stay finite
    sim.run(6)
    sim.apply(A.SetLR(0.05))
    before = sim.ensemble.theta.clone()
    sim.run(20)
    assert sim.status == "running"
    f = sim.frame(timing=False)
    assert f.chains == 7 and f.chains_dropped == 3
    assert "3 of 10 chains diverged" in f.chains_notice
    assert np.isfinite(f.chains_theta).all() and f.chains_theta.shape == (7, 2)
    assert math.isfinite(f.chains_ball_radius) and math.isfinite(f.chains_train_loss)
    alive = [k for k in range(9) if k not in (1, 4, 6)]
    assert not torch.equal(sim.ensemble.theta[alive], before[alive])        # the others moved on
    assert f.chains_ball_radius < 1e100                                     # the dropped ones (~1e300+) are not in it


def test_too_many_chains_for_memory_is_caught_before_allocating():
    with pytest.raises(BsimInputError) as err:
        make_sim(chains=10 ** 12)          # ~10^16 bytes: it would never allocate
    msg = str(err.value)
    assert msg.startswith("--chains 1000000000000: the ensemble would need about")
    assert "expected at most" in msg and "\n" not in msg
