"""The epsilon-ball: the exact stationary second moment against many independent SGD chains.

The chains (bsim.stats.chains) run the simulation's SGD vectorised over
chains; test_chains_step_like_the_simulation shows the step is the same, and
test_stats_variance shows their batches follow the sampler's law. Each
chain starts at theta*, runs a burn-in of 8 relaxation times, then averages
|theta - theta*|^2; chains are independent, so the standard error (se) of
the mean square is the spread of the per-chain averages over sqrt(M).
Tolerances: 4 se, and the 5% on the radius that the issue asks for.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim.problems import make_problem
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats import ball as ball_mod
from bsim.stats import lyapunov as L
from bsim.stats.ball import BallCache, predict_ball, quad_model
from bsim.stats.chains import chain_step, measure_ball

pytestmark = pytest.mark.slow      # Monte Carlo: ensembles of SGD chains

CPU = torch.device("cpu")


def problem(kind="default", **spec):
    sc = find_scenario(kind)
    for k, v in spec.items():
        setattr(sc.problem, k, v)
    return make_problem(sc, CPU, torch.float64)


@pytest.fixture(scope="module")
def wellcond():
    """Least squares, N = 256, d = 2, Hessian eigenvalues about 0.5 and 0.85."""
    p = problem(n_train=256, dim=2, condition=2.0)
    return p, quad_model(p)


def check(ms, se, pred_ms):
    assert se < 0.0125 * pred_ms                       # precise enough to see a 5% radius error
    assert abs(ms - pred_ms) < 4 * se, (ms, pred_ms, se)
    assert abs(math.sqrt(ms / pred_ms) - 1) < 0.05


@pytest.mark.parametrize("B", [1, 4, 16, 64])
def test_iid_ball_matches_the_exact_prediction(wellcond, B):
    p, m = wellcond
    th = predict_ball(m, B, 0.2, 0.0, "iid")
    ms, se = measure_ball(p, B, 0.2, 0.0, "iid", chains=600, burn_in=th.burn_in, steps=250, seed=B)
    check(ms, se, th.radius ** 2)
    if B == 64:   # the uncorrected 1/B factor (the with-replacement prediction) is 33% too big here
        wrong = predict_ball(m, B, 0.2, 0.0, "replacement").radius ** 2
        assert abs(ms - wrong) > 20 * se


def test_with_replacement_ball_uses_one_over_B(wellcond):
    p, m = wellcond
    th = predict_ball(m, 64, 0.2, 0.0, "replacement")
    ms, se = measure_ball(p, 64, 0.2, 0.0, "replacement", chains=600, burn_in=th.burn_in, steps=250, seed=5)
    check(ms, se, th.radius ** 2)
    assert th.c_b == 1 / 64 and "replacement" in th.label


@pytest.mark.parametrize("B", [1, 16])
def test_shuffled_ball_is_the_reshuffled_prediction(wellcond, B):
    """Under shuffle the prediction shown is the reshuffled one, the iid one beside it; the chains
    (bsim.stats.chains: shuffled epochs, B divides N = 256) agree with the first within 3% of the radius,
    and at B = 16 reject the second."""
    p, m = wellcond
    th = predict_ball(m, B, 0.2, 0.0, "shuffle")
    iid = predict_ball(m, B, 0.2, 0.0, "iid")
    assert th.kind == "reshuffled" and th.label.startswith("reshuffled") and iid.kind == "exact"
    assert th.radius_iid == iid.radius and th.radius < iid.radius
    ms, se = measure_ball(p, B, 0.2, 0.0, "shuffle", chains=600, burn_in=th.burn_in, steps=512, seed=9)
    assert se < 0.006 * ms
    assert abs(th.radius / math.sqrt(ms) - 1) < 0.03, (th.radius ** 2, ms, se)
    if B == 16:
        assert ms < iid.radius ** 2 - 20 * se


def test_exact_prediction_beats_the_additive_one():
    """N = 1000, d = 2, B = 1, lr = 0.12: the additive-noise prediction is ~13% low (in E|e|^2); the exact one holds."""
    p = problem(n_train=1000)
    th = predict_ball(quad_model(p), 1, 0.12, 0.0, "iid")
    exact, additive = th.radius ** 2, th.radius_additive ** 2
    assert 0.09 < 1 - additive / exact < 0.16
    ms, se = measure_ball(p, 1, 0.12, 0.0, "iid", chains=3000, burn_in=th.burn_in, steps=500, seed=11)
    assert se < 0.01 * exact
    assert abs(ms - exact) < 4 * se
    assert ms - additive > 8 * se


def test_momentum_ball_from_the_two_step_state(wellcond):
    p, m = wellcond
    th = predict_ball(m, 4, 0.05, 0.5, "iid")
    plain = predict_ball(m, 4, 0.05, 0.0, "iid")
    assert th.radius > 1.3 * plain.radius         # momentum 0.5 about doubles the effective lr
    ms, se = measure_ball(p, 4, 0.05, 0.5, "iid", chains=500, burn_in=th.burn_in, steps=300, seed=13)
    check(ms, se, th.radius ** 2)


@pytest.mark.parametrize("fraction, bias", [(0.05, 0.03), (0.2, 0.13), (0.5, 0.31)])
def test_logreg_linearisation_within_its_stated_range(fraction, bias):
    """The note's statement against the chains (data seed 2027): at 0.05x and 0.2x of the stability
    limit the linearised ball is low by at most the stated bias (in the mean square), within 4 se;
    at 0.5x it is visibly low, as the note warns."""
    sc = find_scenario("logreg")
    sc.seed, sc.problem.n_train = 2027, 256
    p = make_problem(sc, CPU, torch.float64)
    m = quad_model(p)
    lr = fraction * predict_ball(m, 8, 0.01, 0.0, "iid").lr_limit
    th = predict_ball(m, 8, lr, 0.0, "iid")
    assert th.kind == "linearised" and th.label.startswith("linearisation at theta*")
    assert "13% low at 0.2x" in th.note and f"lr is at {fraction:.2g}x the limit" in th.note
    assert th.limit_fraction == pytest.approx(fraction)
    ms, se = measure_ball(p, 8, lr, 0.0, "iid", chains=500, burn_in=th.burn_in, steps=400, seed=17)
    ratio, tol = th.radius ** 2 / ms, 4 * se / ms
    assert se < 0.012 * ms
    assert 1 - bias - tol < ratio < 1 + tol, (ratio, se / ms)
    if fraction == 0.5:
        assert ratio < 1 - tol


def brute_moment(m, lr, S, iters):
    """B = 1, iid: iterate S <- (1/N) sum_i (I - lr A_i) S (I - lr A_i) + lr^2 Sigma* over all N examples."""
    a, n = m.a, m.n
    for _ in range(iters):
        q = np.einsum("nd,de,ne->n", a, S, a)          # a_i^T S a_i
        mean_ASA = (a.T * q) @ a / n                   # (1/N) sum A_i S A_i
        mean_AS = (a.T @ (a @ S)) / n                  # H S
        S = S - lr * (mean_AS + mean_AS.T) + lr * lr * mean_ASA + lr * lr * m.sigma_star
    return S


def test_stability_limit_three_ways(wellcond):
    """The limit from the generalised eigenvalue, from bisection on the positive-definite test, and
    from iterating the second moment over every example: below it S converges to the prediction,
    above it S grows without bound. It is tighter than the deterministic 2 / lambda_max."""
    p, m = wellcond
    lim = predict_ball(m, 1, 0.1, 0.0, "iid").lr_limit
    mult = L.multiplicative(m.a)
    assert L.lr_limit_bisect(m.H, mult, 1.0, 0.0) == pytest.approx(lim, rel=1e-3)
    assert lim < 0.5 * 2 / np.linalg.eigvalsh(m.H)[-1]
    below = predict_ball(m, 1, 0.97 * lim, 0.0, "iid")
    S = brute_moment(m, 0.97 * lim, np.zeros((2, 2)), 6000)
    assert below.stable and below.spectral_radius < 1
    assert np.allclose(S, below.covariance, rtol=1e-6, atol=1e-12)
    above = predict_ball(m, 1, 1.03 * lim, 0.0, "iid")
    assert not above.stable and above.radius is None and above.spectral_radius > 1
    assert above.note.startswith(f"unstable: lr above the limit {lim:.4g}")
    S1 = brute_moment(m, 1.03 * lim, np.zeros((2, 2)), 3000)
    S2 = brute_moment(m, 1.03 * lim, S1, 3000)
    assert np.trace(S2) > 10 * np.trace(S1) > 10 * np.trace(below.covariance)


def test_momentum_limit_and_unstable_message(wellcond):
    p, m = wellcond
    th = predict_ball(m, 4, 0.05, 0.5, "iid")
    assert 0.05 < th.lr_limit < 2 * 1.5 / np.linalg.eigvalsh(m.H)[-1]
    over = predict_ball(m, 4, 1.02 * th.lr_limit, 0.5, "iid")
    assert not over.stable and over.radius is None and over.note.startswith("unstable: lr above the limit")
    assert predict_ball(m, 4, 0.98 * th.lr_limit, 0.5, "iid").stable


def test_small_lr_approximations_converge(wellcond):
    p, m = wellcond
    th = predict_ball(m, 4, 1e-3, 0.0, "iid")
    assert th.radius_additive == pytest.approx(th.radius, rel=1e-3)
    assert th.radius_small_lr == pytest.approx(th.radius, rel=2e-3)
    big = predict_ball(m, 1, 0.3, 0.0, "iid")
    assert big.radius_small_lr < 0.93 * big.radius


def test_chains_step_like_the_simulation():
    """chain_step with the simulation's own batches reproduces Simulation.step, momentum included."""
    sc = apply_overrides(find_scenario("default"), sampling="iid", momentum=0.5, batch_size=5)
    sim = Simulation(sc, stats=False)
    theta = sim.theta[None].clone()
    vel = torch.zeros_like(theta)
    for _ in range(200):
        sim.step()
        theta, vel = chain_step(sim.problem, theta, vel, sim.last_idx[None], sim.lr, sim.momentum)
    assert torch.allclose(theta[0], sim.theta, rtol=1e-12, atol=1e-14)


def test_theory_is_cached_not_recomputed_per_step(monkeypatch):
    calls = []
    real = ball_mod.predict_ball
    monkeypatch.setattr(ball_mod, "predict_ball", lambda *a, **k: calls.append(a) or real(*a, **k))
    sim = Simulation(apply_overrides(find_scenario("default"), sampling="iid"))
    for k in range(300):
        if k == 150:
            sim.set_batch_size(16)
        sim.step()
        sim.frame()
    keys = [(c[1], c[2], c[4]) for c in calls]                # (batch size, lr, sampling)
    assert len(keys) == len(set(keys))                        # each prediction once, never per step
    assert {(8, 0.05, "iid"), (16, 0.05, "iid")} <= set(keys)
    assert len(keys) <= 2 + 2 * 10         # and the ball's law curves once: 10 batch sizes, both samplings
    cache = BallCache(quad_model(sim.problem))
    assert cache.get(4, 0.1, 0.0, "iid") is cache.get(4, 0.1, 0.0, "iid")


def test_limit_cached_across_lr_and_power_iteration_radius(wellcond):
    p, m = wellcond
    cache = BallCache(m)
    cache.get(4, 0.05, 0.5, "iid")
    fresh = predict_ball(m, 4, 0.2, 0.5, "iid")
    assert cache.get(4, 0.2, 0.5, "iid").lr_limit == fresh.lr_limit
    T = L.operator(m.H, L.multiplicative(m.a), 0.2, fresh.c_b, 0.5)
    dense = L.spectral_radius(T, symmetric=False)
    assert L.spectral_radius(T, symmetric=False, max_dense=0, iters=5000) == pytest.approx(dense, rel=1e-6)
