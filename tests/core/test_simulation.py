"""The simulation: the SGD update, determinism, timeline events exactly at
their step, lr scaling, actions, divergence and reset."""

from __future__ import annotations

import math

import pytest
import torch

from bsim import actions
from bsim.scenario import find_scenario, parse_scenario
from bsim.simulation import Simulation


def scenario(name="default", **opt):
    sc = find_scenario(name)
    sc.device = "cpu"
    for k, v in opt.items():
        setattr(sc.optimizer, k, v)
    return sc


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_update_is_torch_sgd_on_the_same_batches(momentum):
    """theta and the velocity follow torch.optim.SGD given the batches the simulation drew."""
    sim = Simulation(scenario(momentum=momentum, lr=0.1, batch_size=16))
    p = sim.problem
    w = torch.zeros(p.n_params, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=momentum)
    for _ in range(30):
        sim.step()
        opt.zero_grad()
        (0.5 * ((p.X[sim.last_idx] @ w - p.y[sim.last_idx]) ** 2).mean()).backward()
        opt.step()
    assert torch.allclose(sim.theta, w.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["default", "logreg", "lstm", "shuffle-vs-iid", "linear-scaling"])
def test_same_scenario_same_trajectory_bit_for_bit(name):
    steps = 60 if name == "lstm" else 300
    a, b = Simulation(scenario(name)), Simulation(scenario(name))
    for _ in range(steps):
        a.step()
        b.step()
        assert torch.equal(a.theta, b.theta)
    sc = scenario(name)
    sc.seed = 1
    c = Simulation(sc)
    c.run(steps)
    assert not torch.equal(a.theta, c.theta)


def test_same_trajectory_with_actions_applied_between_steps():
    def run():
        sim = Simulation(scenario(sampling="iid"))
        sim.run(10)
        sim.apply(actions.SetBatchSize(32))
        sim.run(10)
        sim.apply(actions.SetSampling("shuffle"))
        sim.apply(actions.SetMomentum(0.5))
        sim.run(10)
        return sim.theta
    assert torch.equal(run(), run())


def test_timeline_event_applies_exactly_after_its_step():
    """docs/usage.md: an event at step k is applied after k steps; step k+1 is the first with it."""
    sc = parse_scenario('device = "cpu"\n[optimizer]\nbatch_size = 8\nlr = 0.05\n'
                        '[[timeline]]\nat = 5\nbatch_size = 16\nlr = 0.02\ncaption = "bigger"\n')
    sim = Simulation(sc)
    seen = []
    for _ in range(8):
        sim.step()
        f = sim.frame(timing=False)
        seen.append((f.step, f.batch_size, f.lr))
    assert seen[:5] == [(k, 8, 0.05) for k in range(1, 6)]
    assert seen[5:] == [(k, 16, 0.02) for k in range(6, 9)]
    assert sim.captions == [(5, "bigger")]
    # and it is the same trajectory as doing it by hand after 5 steps
    plain = sc.copy()
    plain.timeline = []
    by_hand = Simulation(plain)
    by_hand.run(5)
    by_hand.set_batch_size(16)
    by_hand.set_lr(0.02)
    by_hand.run(3)
    assert torch.equal(by_hand.theta, sim.theta)


def test_event_at_zero_applies_before_the_first_step_and_the_pause_comes_next():
    sc = parse_scenario('device = "cpu"\n[[timeline]]\nat = 0\nbatch_size = 4\n[[timeline]]\nat = 2\npause = true\n')
    sim = Simulation(sc)
    assert [ev.batch_size for ev in sim.timeline.upcoming(0)] == [4]
    sim.step()
    assert sim.frame().batch_size == 4 and sim.timeline.next_at() == 2
    assert sim.take_notices() == ["batch size 8 -> 4"]      # what the event changed, for the runner to show
    sim.step()
    assert [ev.pause for ev in sim.timeline.upcoming(sim.tick)] == [True]
    sim.step()
    assert sim.timeline.next_at() is None and sim.timeline.left(sim.tick) == 0


@pytest.mark.parametrize("mode,factor", [("none", 1.0), ("linear", 8.0), ("sqrt", math.sqrt(8.0))])
def test_lr_follows_the_batch_size_by_the_scaling_rule(mode, factor):
    sim = Simulation(scenario(batch_size=8, lr=0.05, lr_scaling=mode))
    notice = sim.set_batch_size(64)
    assert sim.lr == pytest.approx(0.05 * factor, rel=1e-15)
    assert "8 -> 64" in notice
    sim.set_batch_size(8)
    assert sim.lr == pytest.approx(0.05, rel=1e-15)
    sim.step()
    assert sim.frame().lr == sim.lr


def test_explicit_lr_under_scaling_becomes_the_new_reference():
    sim = Simulation(scenario(batch_size=8, lr=0.05, lr_scaling="linear"))
    sim.set_batch_size(64)                      # lr 0.4
    sim.set_lr(0.1)                             # by hand: 0.1 at B = 64
    sim.set_batch_size(32)
    assert sim.lr == pytest.approx(0.05)        # half the batch, half the lr
    sim.set_batch_size(8)
    assert sim.lr == pytest.approx(0.0125)      # 0.1 * 8 / 64


def test_switching_the_scaling_mode_keeps_the_lr():
    sim = Simulation(scenario(batch_size=8, lr=0.05, lr_scaling="linear"))
    sim.set_batch_size(64)
    assert sim.lr == pytest.approx(0.4)
    sim.set_lr_scaling("sqrt")
    assert sim.lr == pytest.approx(0.4)
    sim.set_batch_size(16)                      # sqrt rule from (64, 0.4): 0.4 * sqrt(16/64)
    assert sim.lr == pytest.approx(0.2)
    sim.set_lr_scaling("none")
    sim.set_batch_size(256)
    assert sim.lr == pytest.approx(0.2)


def test_event_with_batch_size_and_lr_takes_the_explicit_lr():
    sc = parse_scenario('device = "cpu"\n[optimizer]\nlr_scaling = "linear"\nbatch_size = 8\nlr = 0.05\n'
                        '[[timeline]]\nat = 1\nbatch_size = 32\nlr = 0.1\n')
    sim = Simulation(sc)
    sim.run(2)
    assert (sim.batch_size, sim.lr) == (32, 0.1)


def test_bad_action_values_are_refused_and_change_nothing():
    sim = Simulation(scenario())
    before = (sim.batch_size, sim.lr, sim.momentum, sim.sampling, sim.lr_scaling)
    for action in (actions.SetBatchSize(0), actions.SetBatchSize(2.5), actions.SetLR(0.0), actions.SetLR(float("nan")), actions.SetLR(-1),
                   actions.SetMomentum(1.0), actions.SetSampling("random"), actions.SetLRScaling("cubic"), actions.SwitchProblem("mlp")):
        with pytest.raises(actions.ActionError):
            sim.apply(action)
    assert (sim.batch_size, sim.lr, sim.momentum, sim.sampling, sim.lr_scaling) == before


def test_batch_size_above_n_is_clamped_with_a_notice():
    sim = Simulation(scenario())
    notice = sim.apply(actions.SetBatchSize(5000))
    assert sim.batch_size == 1024 and "clamped" in notice
    sim.step()
    assert sim.frame().batch_size == 1024


def test_frame_metrics_are_what_they_say():
    sim = Simulation(scenario())
    sim.run(20)
    f = sim.frame(timing=False)
    p = sim.problem
    assert f.dist_to_opt == pytest.approx(float((sim.theta - p.theta_star).norm()), rel=1e-14)
    assert f.train_loss == pytest.approx(float(p.train_loss(sim.theta)), rel=1e-14)
    assert f.test_loss == pytest.approx(float(p.test_loss(sim.theta)), rel=1e-14)
    assert f.grad_norm == pytest.approx(float(sim.last_grad.norm()), rel=1e-14)
    G = p.full_grad(sim.last_theta)             # at the parameters the step started from
    assert f.full_grad_norm == pytest.approx(float(G.norm()), rel=1e-12)
    assert f.epoch == f.samples / 1024 and f.samples == 20 * 8
    assert f.theta == tuple(sim.theta.tolist()) and f.status == "running"


def _diverging(lr=1e150):
    return Simulation(scenario(lr=lr))


def test_divergence_stops_cleanly_keeping_the_last_finite_state():
    sim = _diverging()
    taken = sim.run(1000)
    assert taken < 1000 and sim.diverged and sim.status == "diverged"
    assert f"diverged at step {taken + 1}" in sim.message and "reset" in sim.message
    assert torch.isfinite(sim.theta).all()
    assert sim.step_count == taken and sim.tick == taken
    twin = _diverging()                         # the state is that of the last finite step
    twin.run(taken)
    assert torch.equal(twin.theta, sim.theta)
    assert sim.frame(timing=False).samples == twin.frame(timing=False).samples
    f = sim.frame(timing=False)
    assert f.status == "diverged" and f.message == sim.message and math.isfinite(f.batch_loss)
    theta = sim.theta.clone()
    assert sim.step() is False and sim.run(5) == 0
    assert torch.equal(sim.theta, theta) and sim.step_count == taken


def test_reset_after_divergence_runs_again():
    sim = _diverging()
    sim.run(1000)
    sim.set_lr(0.05)
    notice = sim.apply(actions.Reset())
    assert "reset" in notice
    assert sim.status == "running" and sim.message == "" and sim.step_count == 0
    assert torch.equal(sim.theta, sim.theta0)
    assert sim.run(200) == 200 and not sim.diverged
    assert sim.frame().dist_to_opt < 0.5


def test_reset_keeps_settings_and_replays_the_same_draws():
    sim = Simulation(scenario())
    sim.run(7)
    sim.set_batch_size(32)
    sim.set_momentum(0.5)
    sim.run(7)
    sim.reset()
    assert (sim.batch_size, sim.momentum, sim.step_count) == (32, 0.5, 0)
    sim.run(7)
    fresh = Simulation(scenario())
    fresh.set_batch_size(32)
    fresh.set_momentum(0.5)
    fresh.run(7)
    assert torch.equal(sim.theta, fresh.theta)


def test_lstm_divergence_too():
    sim = Simulation(scenario("lstm", lr=1e30))
    taken = sim.run(200)
    assert sim.diverged and taken < 200 and torch.isfinite(sim.theta).all()


def test_switch_problem_keeps_the_tick():
    sim = Simulation(scenario())
    sim.run(5)
    notice = sim.apply(actions.SwitchProblem("logreg"))
    assert sim.problem.kind == "logreg" and sim.step_count == 0 and sim.tick == 5
    assert "linreg -> logreg" in notice
    sim.run(3)
    assert sim.frame().problem == "logreg"


def test_auto_device_is_cpu_without_a_gpu():
    sim = Simulation(find_scenario("default"))
    assert sim.device.type == ("cuda" if torch.cuda.is_available() else
                               "mps" if torch.backends.mps.is_available() else "cpu")
    assert sim.theta.device.type == sim.device.type
