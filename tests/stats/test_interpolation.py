"""Least squares with d >= N (issue 23): every example fitted, the ball a point, a linear rate per step instead.

References written here, apart from bsim: theta* from NumPy's pseudo-inverse, the second-moment map of one
SGD step as a Kronecker sum over examples, and an ensemble of SGD chains in plain NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from bsim.scenario import find_scenario, parse_scenario
from bsim.simulation import Simulation
from bsim.stats.interpolation import critical_batch


def interpolating(n=16, dim=32, batch_size=4, lr=0.12, sampling="iid"):
    sc = find_scenario("interpolation")
    sc.problem.n_train, sc.problem.dim = n, dim
    sc.optimizer.batch_size, sc.optimizer.lr, sc.optimizer.sampling = batch_size, lr, sampling
    sc.optimizer.lr_scaling = "none"
    return Simulation(sc)


def test_theta_star_is_the_minimum_norm_solution_and_fits_every_example():
    sim = interpolating()
    p = sim.problem
    X, y = p.X64, p.y64
    assert p.interpolating and X.shape[1] > X.shape[0]
    assert np.allclose(p.theta_star64, np.linalg.pinv(X) @ y, rtol=1e-10, atol=1e-12)
    assert np.abs(X @ p.theta_star64 - y).max() < 1e-10 * (1 + np.abs(y).max())
    sim.theta.copy_(p.theta_star)             # at theta*: no gradient, no batch noise
    sim.run(1)
    f = sim.frame(timing=False)
    assert f.trace_sigma == pytest.approx(0.0, abs=1e-20) and f.grad_noise == pytest.approx(0.0, abs=1e-20)
    assert f.dist_to_opt < 1e-12
    assert f.ball_radius_theory == 0.0 and f.ball_theory == "exact" and "minimum-norm" in p.optimum_label


def test_a_least_squares_scenario_with_fewer_examples_than_parameters_loads_and_logreg_still_refuses():
    parse_scenario('[problem]\nkind = "linreg"\nn_train = 4\ndim = 8\n')
    with pytest.raises(Exception, match="n_train: got 4"):
        parse_scenario('[problem]\nkind = "logreg"\nn_train = 4\ndim = 8\n')



def second_moment_operator(X: np.ndarray, lr: float, c: float) -> np.ndarray:
    """E[(I - lr H_B) . (I - lr H_B)] on n x n matrices in X's row space (n = N rows of rank N), written out over
    the examples: (I - lr H) (x) (I - lr H) + lr^2 c_B (mean_n A_n (x) A_n - H (x) H), A_n = z_n z_n^T."""
    n = X.shape[0]
    Z = X @ np.linalg.svd(X, full_matrices=False)[2].T
    A = np.einsum("ni,nj->nij", Z, Z)
    H = A.mean(0)
    eye = np.eye(n)
    return np.kron(eye - lr * H, eye - lr * H) + lr ** 2 * c * (
        np.einsum("nij,nkl->ikjl", A, A).reshape(n * n, n * n) / n - np.kron(H, H))

@pytest.mark.parametrize("batch_size,sampling", [(1, "iid"), (4, "iid"), (4, "replacement"), (16, "iid")])
def test_the_rate_is_the_spectral_radius_of_the_one_step_map(batch_size, sampling):
    """E[e' e'^T] = E[(I - lr H_B) e e^T (I - lr H_B)]: written out over the examples in X's row space,
    c_B = (N - B)/(B (N - 1)) for B distinct, 1/B with replacement; its largest eigenvalue is the rate."""
    lr = 0.1
    sim = interpolating(batch_size=batch_size, lr=lr, sampling=sampling)
    X = sim.problem.X64
    n = X.shape[0]
    c = 1 / batch_size if sampling == "replacement" else (n - batch_size) / (batch_size * (n - 1))
    M = second_moment_operator(X, lr, c)
    sim.run(1)
    ball = sim.frame(timing=False).ball
    assert ball.rate == pytest.approx(np.linalg.eigvalsh(M)[-1], rel=1e-10)
    assert ball.radius_theory == 0.0 and ball.stable
    assert ball.critical_batch == pytest.approx(np.max((X * X).sum(1)) / np.linalg.eigvalsh(X @ X.T / n)[-1])


@pytest.mark.slow
def test_an_ensemble_of_numpy_chains_falls_at_the_shown_rate():
    """2000 chains of SGD (B = 4 distinct examples a step, drawn afresh), started in the slowest mode of the
    one-step map (e_0 ~ N(0, V), V its top eigenvector) so that E|e_t|^2 = rate^t E|e_0|^2 from t = 0; the
    measured rate over 150 steps, with its standard error (delta method over the chains), against the shown."""
    B, lr, K, T = 4, 0.12, 2000, 150
    sim = interpolating(batch_size=B, lr=lr)
    sim.run(1)
    rate = sim.frame(timing=False).ball.rate
    X = sim.problem.X64
    n = X.shape[0]
    M = second_moment_operator(X, lr, (n - B) / (B * (n - 1)))
    U = np.linalg.svd(X, full_matrices=False)[2].T        # X's row space, as the operator's basis
    V = np.linalg.eigh(M)[1][:, -1].reshape(n, n)
    V = (V + V.T) / 2 * np.sign(np.trace(V))
    w, Q = np.linalg.eigh(V)
    root = Q * np.sqrt(np.clip(w, 0, None))
    rng = np.random.default_rng(2023)
    E = rng.standard_normal((K, n)) @ root.T @ U.T
    m0 = (E * E).sum(1)
    for _ in range(T):
        idx = rng.random((K, n)).argpartition(B, axis=1)[:, :B]
        Xb = X[idx]
        E = E - lr * np.einsum("kbd,kb->kd", Xb, np.einsum("kbd,kd->kb", Xb, E)) / B
    m = (E * E).sum(1)
    measured = (m.mean() / m0.mean()) ** (1 / T)
    var_log = (m.var() / m.mean() ** 2 + m0.var() / m0.mean() ** 2
               - 2 * np.cov(m, m0)[0, 1] / (m.mean() * m0.mean())) / K
    se = measured * np.sqrt(var_log) / T
    assert 1 - rate > 50 * se                 # the test can tell the rate from 1
    assert abs(measured - rate) < 2 * se, (measured, rate, se)


def test_critical_batch_is_max_norm_over_the_top_eigenvalue():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 30)) * np.linspace(1, 3, 30)
    lam = np.linalg.eigvalsh(X.T @ X / 10)[-1]
    assert critical_batch(X) == pytest.approx(max(float(x @ x) for x in X) / lam, rel=1e-12)
