"""The spread of the batch gradient across batches at fixed parameters (E|g_B - G|^2 = c_B tr(Sigma), docs/science.md).

Monte Carlo with the real Sampler and the problem's own batch gradient, at
parameters away from theta* (so G != 0). Tolerances are 4 standard errors of
the Monte Carlo mean; for shuffled epochs the standard error comes from
epoch means (batches of one epoch are disjoint, not independent).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim.problems import make_problem
from bsim.sampler import Sampler
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.cfactor import VarianceTheory, c_factor, temperature
from bsim.stats.chains import ChainSampler
from bsim.stats.fullgrad import LinearFullPass, LinRegMoments

pytestmark = pytest.mark.slow      # Monte Carlo over many batches

N = 256
CPU = torch.device("cpu")


def linreg(n=N, dim=5, **problem):
    sc = find_scenario("default")
    sc.problem.n_train, sc.problem.dim = n, dim
    for k, v in problem.items():
        setattr(sc.problem, k, v)
    return make_problem(sc, CPU, torch.float64)


def logreg(l2=0.0, dim=3):
    sc = find_scenario("logreg")
    sc.problem.n_train, sc.problem.dim, sc.problem.l2 = N, dim, l2
    return make_problem(sc, CPU, torch.float64)


def brute(problem, theta):
    """G and tr(Sigma) from all N per-example gradients (the definition)."""
    P = problem.per_example_grads(theta)
    G = P.mean(0)
    return G, float(((P - G) ** 2).sum(1).mean())


def away_from_optimum(problem, scale=0.5):
    g = torch.Generator().manual_seed(7)
    return problem.theta_star + scale * torch.randn(problem.n_params, generator=g, dtype=torch.float64)


@pytest.fixture(scope="module")
def setting():
    p = linreg()
    theta = away_from_optimum(p)
    G, tr = brute(p, theta)
    return p, theta, G, tr


def draw_noise(p, theta, G, sampler, B, draws):
    out = np.empty(draws)
    for k in range(draws):
        g = p.loss_and_grad(theta, sampler.next_batch(B))[1]
        out[k] = float(((g - G) ** 2).sum())
    return out


@pytest.mark.parametrize("mode", ["shuffle", "iid", "replacement"])
@pytest.mark.parametrize("B", [1, 4, 64, N])
def test_batch_gradient_variance_is_c_B_trace_sigma(setting, mode, B):
    p, theta, G, tr = setting
    per_epoch = N // B
    epochs = max(40, 3000 // per_epoch)
    gen = torch.Generator().manual_seed(1000 * B + len(mode))
    noise = draw_noise(p, theta, G, Sampler(N, mode, False, gen, CPU), B, per_epoch * epochs)
    pred = c_factor(N, B, mode) * tr
    if mode != "replacement" and B == N:
        assert pred == 0.0
        assert noise.max() < 1e-24 * tr          # the whole set: g_B = G up to rounding
        return
    if mode == "shuffle" and B == 1:
        # an epoch of B = 1 visits every example once: its draws are the N values |g_i - G|^2 in some order,
        # so every epoch's mean is tr(Sigma) exactly (c_1 = 1) and the epochs' spread is 0: check that directly
        per_example = np.sort(((p.per_example_grads(theta) - G) ** 2).sum(1).numpy())
        epochs_sorted = np.sort(noise.reshape(epochs, N), axis=1)
        assert np.allclose(epochs_sorted, per_example[None, :], rtol=1e-9, atol=1e-12 * tr)
        assert np.allclose(noise.reshape(epochs, N).mean(1), pred, rtol=1e-9)
        assert noise.std() > 0.1 * tr            # the draws themselves do vary: the check is not 0 == 0
        return
    if mode == "shuffle":
        se = noise.reshape(epochs, per_epoch).mean(1).std(ddof=1) / math.sqrt(epochs)
    else:
        se = noise.std(ddof=1) / math.sqrt(len(noise))
    assert abs(noise.mean() - pred) < 4 * se, (noise.mean(), pred, se)
    # the test tells the two factors apart where they differ: (N-B)/(B(N-1)) against 1/B
    if B == 64:
        wrong = tr / B if mode != "replacement" else c_factor(N, B, "iid") * tr
        assert abs(noise.mean() - wrong) > 8 * se


def test_c_factor_values():
    assert c_factor(1000, 1, "iid") == 1.0 and c_factor(1000, 1000, "shuffle") == 0.0
    assert c_factor(1000, 1000, "replacement") == 1e-3
    # without the finite-population correction (1/B for c_B) the prediction is 6% off at B = 64, N = 1000
    assert 0.06 < 1 - c_factor(1000, 64, "iid") / (1 / 64) < 0.065
    assert temperature(0.1, 1000, 10, 0.5) == pytest.approx(0.1 * (1000 / 10 - 1) / 0.5)   # Smith & Le: lr (N/B - 1)/(1 - m)
    assert temperature(0.1, 1000, 1000) == 0.0                                              # no noise at B = N
    assert temperature(0.1, 1000, 1000, 0.0, "iid") == 0.0


@pytest.mark.parametrize("sampling", ["shuffle", "iid", "replacement"])
def test_each_sampling_has_its_temperature_from_its_own_batch_variance(sampling):
    """The frame's temperature in each mode against that mode's variance factor, written here: B distinct
    examples (shuffle, iid) E|g_B - G|^2 = (N - B)/(B (N - 1)) tr(Sigma), so T = lr (N/B - 1)/(1 - m)
    = lr c_B (N - 1)/(1 - m); with replacement 1/B, T = lr N/(B (1 - m)) = lr c_B N/(1 - m)."""
    n, b, lr, m = 256, 16, 0.05, 0.5
    sc = apply_overrides(find_scenario("default"), sampling=sampling, momentum=m, batch_size=b, lr=lr)
    sc.problem.n_train, sc.problem.n_test = n, 64
    sim = Simulation(sc)
    sim.step()
    f = sim.frame(timing=False)
    if sampling == "replacement":
        c = 1 / b
        assert f.temperature == pytest.approx(lr * c * n / (1 - m), rel=1e-12)
        assert f.temperature == pytest.approx(lr * n / (b * (1 - m)), rel=1e-12)
    else:
        c = (n - b) / (b * (n - 1))
        assert f.temperature == pytest.approx(lr * c * (n - 1) / (1 - m), rel=1e-12)
        assert f.temperature == pytest.approx(lr * (n / b - 1) / (1 - m), rel=1e-12)
    assert f.stats.c_b == pytest.approx(c, rel=1e-12)      # the factor the variance panel uses


def test_temperature_with_replacement_is_lr_n_over_b():
    """With replacement c_B = 1/B: the temperature lr N / (B (1 - m)) (Smith & Le 2017), not zero at B = N;
    the frame carries the mode's value."""
    assert temperature(0.1, 1000, 10, 0.5, "replacement") == pytest.approx(0.1 * 1000 / (10 * 0.5))
    assert temperature(0.1, 1000, 1000, 0.0, "replacement") == pytest.approx(0.1)
    sc = apply_overrides(find_scenario("default"), sampling="replacement", momentum=0.5)
    sc.problem.n_train, sc.problem.n_test = 256, 64
    sim = Simulation(sc)
    sim.step()
    f = sim.frame(timing=False)
    assert f.temperature == pytest.approx(f.lr * 256 / (f.batch_size * 0.5))
    vt = VarianceTheory(2.0, 100, "iid")
    assert vt.points([1, 100, 200]) == [(1, 2.0), (100, 0.0)]


@pytest.mark.parametrize("mode", ["iid", "replacement", "shuffle"])
def test_chain_sampler_draws_batches_like_the_sampler(setting, mode):
    """The vectorised chains' batches: distinct where they must be, and the same c_B tr(Sigma) law."""
    p, theta, G, tr = setting
    B, M, steps = 64, 500, 8
    cs = ChainSampler(N, mode, M, torch.Generator().manual_seed(3), CPU)
    idx = torch.stack([cs.next(B) for _ in range(steps)])          # (steps, M, B)
    if mode != "replacement":
        assert all(len(set(row.tolist())) == B for row in idx.reshape(-1, B)[:200])
    if mode == "shuffle":   # one epoch per chain = 4 batches: every example exactly once
        epoch = idx[:4].permute(1, 0, 2).reshape(M, -1).sort(dim=1).values
        assert torch.equal(epoch, torch.arange(N).expand(M, -1))
    Xb, yb = p.X[idx], p.y[idx]
    r = Xb @ theta - yb
    g = (r[..., None] * Xb).mean(-2)
    noise = ((g - G) ** 2).sum(-1).reshape(-1).numpy()
    if mode == "shuffle":   # chains are independent; within a chain, use its mean
        per_chain = ((g - G) ** 2).sum(-1).mean(0).numpy()
        se = per_chain.std(ddof=1) / math.sqrt(M)
    else:
        se = noise.std(ddof=1) / math.sqrt(len(noise))
    assert abs(noise.mean() - c_factor(N, B, mode) * tr) < 4 * se


def test_closed_forms_match_all_per_example_gradients():
    """G and tr(Sigma) at many parameters: O(d^2) moments (linreg), one data pass (logreg, with and without l2)."""
    p = linreg(dim=4)
    thetas = torch.stack([away_from_optimum(p, s) for s in (0.0, 0.1, 1.0, 10.0)])
    G, tr, E = LinRegMoments(p)(thetas)
    for k, th in enumerate(thetas):
        Gb, trb = brute(p, th)
        assert torch.allclose(G[k], Gb, rtol=1e-9, atol=1e-12)
        assert tr[k].item() == pytest.approx(trb, rel=1e-9)
        assert torch.allclose(E[k], th - p.theta_star)
    for q in (logreg(), logreg(l2=0.05)):
        thetas = torch.stack([away_from_optimum(q, s) for s in (0.0, 0.3, 3.0)])
        G, tr, _ = LinearFullPass(q)(thetas)
        for k, th in enumerate(thetas):
            Gb, trb = brute(q, th)
            assert torch.allclose(G[k], Gb, rtol=1e-9, atol=1e-13)
            assert tr[k].item() == pytest.approx(trb, rel=1e-9)
            assert torch.allclose(G[k], q.full_grad(th), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("kind", ["default", "logreg"])
def test_frame_quantities_of_the_step_just_taken(kind):
    """Each frame: |G|, cos, grad_noise, c_B tr(Sigma) (a short last batch with its own c_B), B_simple."""
    sc = apply_overrides(find_scenario(kind), batch_size=30, sampling="shuffle")
    sc.problem.n_train = 100                     # 30 + 30 + 30 + a last batch of 10
    sim = Simulation(sc)
    for step in range(1, 6):
        sim.step()
        f = sim.frame()
        theta, g = sim.last_theta, sim.last_grad
        G, tr = brute(sim.problem, theta)
        B = 10 if step == 4 else 30
        assert f.batch_size == B
        assert f.full_grad_norm == pytest.approx(float(G.norm()), rel=1e-9)
        assert f.cos_to_full == pytest.approx(float(g @ G / (g.norm() * G.norm())), rel=1e-9)
        assert f.grad_noise == pytest.approx(float(((g - G) ** 2).sum()), rel=1e-9)
        assert f.grad_noise_theory == pytest.approx((100 - B) / (B * 99) * tr, rel=1e-9)
        assert f.trace_sigma == pytest.approx(tr, rel=1e-9)
        assert f.noise_scale == pytest.approx(tr / float(G @ G), rel=1e-9)
        assert f.temperature == pytest.approx(sim.lr * (100 / 30 - 1))
        assert f.full_grad_every == 1
