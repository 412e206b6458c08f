"""Per-example gradients of the LSTM (torch.func) and the two-batch estimator of tr(Sigma) and |G|^2.

The truth comes from all N per-example gradients at fixed parameters (a
small float64 LSTM). Monte Carlo tolerances: 4 standard errors; for ratios
of sums, the standard error of the delta method.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim.problems import make_problem
from bsim.sampler import Sampler
from bsim.scenario import find_scenario
from bsim.stats.cfactor import c_factor
from bsim.stats.perexample import per_example_grads, per_example_loop, per_example_vmap, within_batch_trace
from bsim.stats.twobatch import TwoBatchAverage, half_batch_grad, two_batch

pytestmark = pytest.mark.slow      # Monte Carlo against all per-example gradients

CPU = torch.device("cpu")
N = 64


@pytest.fixture(scope="module")
def lstm():
    sc = find_scenario("lstm")
    sc.problem.n_train, sc.problem.hidden, sc.problem.seq_len = N, 4, 6
    p = make_problem(sc, CPU, torch.float64)
    theta = p.init_params(0)
    P = per_example_vmap(p, theta, torch.arange(N))
    G = P.mean(0)
    return p, theta, G, float(((P - G) ** 2).sum(1).mean())


def test_vmap_per_example_gradients_match_a_loop_and_the_batch_gradient(lstm):
    p, theta, G, _ = lstm
    idx = torch.tensor([3, 17, 17, 40, 63])
    vm = per_example_vmap(p, theta, idx)
    assert vm.shape == (5, p.n_params)
    assert torch.allclose(vm, per_example_loop(p, theta, idx), rtol=1e-10, atol=1e-12)
    assert torch.allclose(vm, per_example_grads(p, theta, idx))            # the LSTM has no closed form
    assert torch.allclose(vm.mean(0), p.loss_and_grad(theta, idx)[1], rtol=1e-10, atol=1e-12)
    assert torch.allclose(G, p.full_grad(theta), rtol=1e-10, atol=1e-12)


def test_closed_form_per_example_gradients_of_linear_models():
    for kind in ("default", "logreg"):
        sc = find_scenario(kind)
        sc.problem.n_train = 50
        q = make_problem(sc, CPU, torch.float64)
        th = q.theta_star + 0.3
        idx = torch.arange(0, 50, 7)
        assert torch.allclose(q.per_example_grads(th, idx), per_example_loop(q, th, idx), rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def linreg20():
    """Least squares with d = 20, N = 64, at parameters where |G|^2 is a tenth of tr(Sigma): per-draw
    estimates are far less heavy-tailed than the LSTM's, so the Monte Carlo can be precise."""
    sc = find_scenario("default")
    sc.problem.n_train, sc.problem.dim = 64, 20
    q = make_problem(sc, CPU, torch.float64)
    theta = q.theta_star + 0.05 * torch.randn(20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    P = q.per_example_grads(theta)
    G = P.mean(0)
    return q, theta, G, float(((P - G) ** 2).sum(1).mean())


def draw_estimates(p, theta, mode, batch_sizes, draws, seed):
    """Rows (|g_s|^2, |g_b|^2, c_s, c_b) of ``draws`` batches: s = the first half of each batch b."""
    sampler = Sampler(p.n_train, mode, False, torch.Generator().manual_seed(seed), CPU)
    rows = np.empty((draws, 4))
    for k in range(draws):
        B = batch_sizes[k % len(batch_sizes)]
        idx = sampler.next_batch(B)
        gb, gs = p.loss_and_grad(theta, idx)[1], half_batch_grad(p, theta, idx)
        rows[k] = float(gs @ gs), float(gb @ gb), c_factor(p.n_train, B // 2, mode), c_factor(p.n_train, B, mode)
    return rows


@pytest.mark.parametrize("mode", ["iid", "replacement"])
def test_two_batch_estimator_is_unbiased(linreg20, mode):
    q, theta, G, tr = linreg20
    rows = draw_estimates(q, theta, mode, [8], 20000, seed=2)
    est = np.stack(two_batch(rows[:, 0], rows[:, 1], rows[0, 2], rows[0, 3]), 1)
    se = est.std(0, ddof=1) / math.sqrt(len(est))
    G2 = float(G @ G)
    assert abs(est[:, 0].mean() - tr) < 4 * se[0]
    assert abs(est[:, 1].mean() - G2) < 4 * se[1]
    if mode == "iid":   # without the finite-population factors |G|^2 comes out tr(Sigma)/(N-1) too low
        wrong = two_batch(rows[:, 0], rows[:, 1], 1 / 4, 1 / 8)[1]
        assert abs(wrong.mean() - G2) > 8 * se[1]


def test_averaged_numerators_and_denominators_over_mixed_batch_sizes(linreg20):
    """Steps at B = 4, 8 and 32: the ratio of summed numerators to summed denominators is unbiased."""
    q, theta, G, tr = linreg20
    rows = draw_estimates(q, theta, "iid", [4, 8, 32], 12000, seed=4)
    avg = TwoBatchAverage(horizon=1e12)                 # plain sums
    avg.update(*rows.T)
    ns, nb, cs, cb = rows.T
    num, den = ns - nb, cs - cb
    t_hat = num.sum() / den.sum()
    assert avg.trace_sigma == pytest.approx(t_hat, rel=1e-9)
    se = (num - t_hat * den).std(ddof=1) / (den.mean() * math.sqrt(len(num)))   # delta method
    assert abs(avg.trace_sigma - tr) < 4 * se
    num_g = cs * nb - cb * ns
    g_hat = num_g.sum() / den.sum()
    se_g = (num_g - g_hat * den).std(ddof=1) / (den.mean() * math.sqrt(len(num)))
    assert avg.grad_norm2 == pytest.approx(g_hat, rel=1e-9)
    assert abs(avg.grad_norm2 - float(G @ G)) < 4 * se_g
    assert avg.noise_scale == pytest.approx(avg.trace_sigma / avg.grad_norm2)


def test_two_batch_estimator_on_the_lstm(lstm):
    """The same estimator through the LSTM's own gradients: heavy-tailed draws, so a looser check (4 se)."""
    p, theta, G, tr = lstm
    rows = draw_estimates(p, theta, "iid", [8], 1200, seed=3)
    est = np.stack(two_batch(rows[:, 0], rows[:, 1], rows[0, 2], rows[0, 3]), 1)
    se = est.std(0, ddof=1) / math.sqrt(len(est))
    assert abs(est[:, 0].mean() - tr) < 4 * se[0] and se[0] < 0.25 * tr
    assert abs(est[:, 1].mean() - float(G @ G)) < 4 * se[1] and se[1] < 0.25 * float(G @ G)


def test_within_batch_trace_is_unbiased(lstm):
    p, theta, G, tr = lstm
    sampler = Sampler(N, "iid", False, torch.Generator().manual_seed(6), CPU)
    vals = np.array([float(within_batch_trace(per_example_vmap(p, theta, sampler.next_batch(8)), N, "iid"))
                     for _ in range(600)])
    assert abs(vals.mean() - tr) < 4 * vals.std(ddof=1) / math.sqrt(len(vals))
