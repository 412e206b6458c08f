"""The reshuffled ball against an independent ensemble, and its additive model against exact enumeration.

The ensemble here is written from scratch (not bsim's sampler or chains):
K chains of plain SGD on least squares in float64, started at theta*, each
with its own shuffled epochs (a numpy permutation per chain and epoch,
consecutive batches, a short last batch or drop_last) or iid batches of B
distinct examples. After a burn-in of 8 relaxation times it averages
|theta - theta*|^2 over chains and steps; the chains are independent, so the
standard error is the spread of the per-chain means over sqrt(K). The data
(seed 2027) was not used while the model was developed.

The issue's goal: the shuffle prediction within 3% of the ensemble, in the
radius, including B = 1 near the stability limit. The prediction is now the
sampled epoch map (``bsim.stats.epoch_map``; its 1% tests against 2000-chain
ensembles are in test_stats_reshuffled_sampled.py); the analytic approximation
(additive model x iid correction) is kept beside it as ``radius_approx``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from bsim.problems import make_problem
from bsim.scenario import find_scenario
from bsim.stats.ball import BallCache, predict_ball, quad_model
from bsim.stats.reshuffled import additive_reshuffled, epoch_batches
from bsim.stats.shuffled_ball import shuffled_limit

pytestmark = pytest.mark.slow      # Monte Carlo: ensembles of SGD chains

DATA_SEED = 2027


def ensemble(X, y, star, batch_size, lr, sampling, chains, burn_in, steps, seed, drop_last=False, momentum=0.0):
    """(mean over chains and steps of |theta - theta*|^2, its standard error) of real SGD chains."""
    rng = np.random.default_rng(seed)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    n, d = X.shape
    star_t = torch.as_tensor(star)
    theta = star_t.expand(chains, d).clone()
    vel = torch.zeros_like(theta)
    acc = torch.zeros(chains, dtype=torch.float64)
    rows = np.tile(np.arange(n), (chains, 1))
    order, pos = None, n
    for t in range(burn_in + steps):
        if sampling == "iid":      # B distinct examples: redraw the rows that repeat an index
            idx = rng.integers(n, size=(chains, batch_size))
            while batch_size > 1:
                srt = np.sort(idx, axis=1)
                bad = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
                if not bad.any():
                    break
                idx[bad] = rng.integers(n, size=(int(bad.sum()), batch_size))
        else:
            if pos >= n or (drop_last and n - pos < batch_size):
                order, pos = rng.permuted(rows, axis=1), 0
            idx = order[:, pos:pos + batch_size]
            pos += idx.shape[1]
        idx = torch.as_tensor(idx)
        Xb = Xt[idx]
        resid = torch.einsum("mbd,md->mb", Xb, theta) - yt[idx]
        grad = torch.einsum("mb,mbd->md", resid, Xb) / idx.shape[1]
        vel = momentum * vel + grad if momentum else grad
        theta = theta - lr * vel
        if t >= burn_in:
            acc += ((theta - star_t) ** 2).sum(1)
    per_chain = (acc / steps).numpy()
    return float(per_chain.mean()), float(per_chain.std(ddof=1) / math.sqrt(chains))


@pytest.fixture(scope="module")
def linreg():
    sc = find_scenario("default")
    sc.seed = DATA_SEED
    sc.problem.kind, sc.problem.n_train, sc.problem.dim, sc.problem.condition = "linreg", 400, 3, 4.0
    p = make_problem(sc, torch.device("cpu"), torch.float64)
    return p.X64, p.y64, p.theta_star64, quad_model(p)


# (B, lr or "0.8x" of the iid stability limit, drop_last, chains, steps, largest se / mean square); N = 400.
# Near the limit |e|^2 is heavy-tailed (the multiplicative noise): more chain-steps, a looser se bound.
SHUFFLE_CASES = [
    (1, 0.1, False, 500, 1200, 0.006),
    (1, "0.8x", False, 1000, 3000, 0.012),
    (8, 0.3, False, 400, 1000, 0.006),
    (40, 0.5, False, 300, 800, 0.006),
    (24, 0.4, False, 300, 800, 0.006),     # 16 batches of 24 and a short last batch of 16
    (24, 0.4, True, 300, 800, 0.006),      # the 16 left over are skipped
]


def resolve_lr(model, batch_size, lr):
    if isinstance(lr, str):
        return float(lr[:-1]) * predict_ball(model, batch_size, 0.01, 0.0, "iid").lr_limit
    return lr


@pytest.mark.parametrize("case", SHUFFLE_CASES, ids=lambda c: f"B{c[0]}-lr{c[1]}{'-drop_last' if c[2] else ''}")
def test_shuffle_prediction_within_3_percent_of_the_ensemble(linreg, case):
    X, y, star, model = linreg
    B, lr, drop_last, chains, steps, max_se = case
    lr = resolve_lr(model, B, lr)
    th = predict_ball(model, B, lr, 0.0, "shuffle", drop_last=drop_last)
    assert th.kind == "reshuffled" and th.label.startswith("reshuffled") and "sampled permutations" in th.label
    ms, se = ensemble(X, y, star, B, lr, "shuffle", chains, th.burn_in, steps, seed=100 + B, drop_last=drop_last)
    assert se < max_se * ms                             # 4 se: 1.2% (2.4% near the limit) of the radius
    ratio = th.radius / math.sqrt(ms)
    assert abs(ratio - 1) < 0.03, (ratio, ms, se, th.radius, th.radius_iid)
    if B >= 8:   # the iid prediction, which the panel used to show, is far off: the test can tell them apart
        assert th.radius_iid / math.sqrt(ms) > 1.1
    if B == 1 and isinstance(case[1], str):   # near the limit the additive model alone is far too low
        assert th.radius_approx == pytest.approx(th.radius_additive * math.sqrt(th.correction))
        assert th.radius_additive / math.sqrt(ms) < 0.85 and lr == pytest.approx(0.8 * th.lr_limit_iid)


def test_shuffle_with_momentum_within_3_percent(linreg):
    """Momentum 0.5: the additive model on (theta, velocity) times the iid momentum correction."""
    X, y, star, model = linreg
    th = predict_ball(model, 8, 0.1, 0.5, "shuffle")
    assert th.kind == "reshuffled" and "momentum" in th.label and th.correction is not None
    ms, se = ensemble(X, y, star, 8, 0.1, "shuffle", 400, th.burn_in, 1000, seed=300, momentum=0.5)
    assert se < 0.006 * ms
    assert abs(th.radius / math.sqrt(ms) - 1) < 0.03, (th.radius ** 2, ms, se)
    assert th.radius_iid / math.sqrt(ms) > 1.1


@pytest.mark.parametrize("B, lr, chains, steps, max_se", [(1, "0.8x", 1000, 3000, 0.02), (8, 0.3, 500, 1000, 0.006)])
def test_iid_prediction_is_the_exact_one(linreg, B, lr, chains, steps, max_se):
    X, y, star, model = linreg
    lr = resolve_lr(model, B, lr)
    th = predict_ball(model, B, lr, 0.0, "iid")
    assert th.kind == "exact" and th.radius_iid == th.radius and th.correction is None
    ms, se = ensemble(X, y, star, B, lr, "iid", chains, th.burn_in, steps, seed=200 + B)
    assert se < max_se * ms
    assert abs(ms - th.radius ** 2) < 4 * se, (ms, se, th.radius ** 2)


def test_short_last_batch_and_drop_last_change_the_prediction(linreg):
    """At B = 24 of N = 400 the epoch's last batch has 16 examples or is skipped; at B = 25 none is short."""
    *_, model = linreg
    assert list(epoch_batches(400, 24, False)[-2:]) == [24, 16] and len(epoch_batches(400, 24, True)) == 16
    short = predict_ball(model, 24, 0.4, 0.0, "shuffle")
    dropped = predict_ball(model, 24, 0.4, 0.0, "shuffle", drop_last=True)
    assert "short last batch of 16" in short.note and "drop_last: 16 examples skipped" in dropped.note
    assert short.radius != dropped.radius
    whole = predict_ball(model, 25, 0.4, 0.0, "shuffle").note
    assert "short last batch" not in whole and "drop_last" not in whole
    cache = BallCache(model)
    assert cache.get(24, 0.4, 0.0, "shuffle", drop_last=True).radius == dropped.radius
    assert cache.get(24, 0.4, 0.0, "shuffle").radius == short.radius


# ------------------------------------------------------------------ the additive model, exactly
def enumerate_additive(H, G, lr, momentum, sizes):
    """E[e e^T] of e' = (1+m) e - m e_prev - lr (H e + xi), averaged over an epoch's positions, exactly:
    every permutation of the N examples enumerated, the periodic epoch-start moment solved directly."""
    n, d = G.shape
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    T = np.block([[(1 + momentum) * np.eye(d) - lr * H, -momentum * np.eye(d)], [np.eye(d), np.zeros((d, d))]])
    K = len(sizes)
    kicks = []                               # per permutation: the noise part of z_k for k = 0..K
    for perm in itertools.permutations(range(n)):
        z, path = np.zeros(2 * d), [np.zeros(2 * d)]
        for j in range(K):
            xi = G[list(perm[bounds[j]:bounds[j + 1]])].mean(0)
            z = T @ z - lr * np.concatenate([xi, np.zeros(d)])
            path.append(z)
        kicks.append(path)
    kicks = np.array(kicks)                  # (perms, K + 1, 2d)
    M = np.linalg.matrix_power(T, K)
    C = np.einsum("na,nb->ab", kicks[:, K], kicks[:, K]) / len(kicks)
    P = np.linalg.solve(np.eye(4 * d * d) - np.kron(M, M), C.reshape(-1)).reshape(2 * d, 2 * d)
    avg = np.zeros((d, d))
    for k in range(K):
        Tk = np.linalg.matrix_power(T, k)[:d]
        avg += Tk @ P @ Tk.T + np.einsum("na,nb->ab", kicks[:, k, :d], kicks[:, k, :d]) / len(kicks)
    return avg / K


@pytest.mark.parametrize("B, drop_last, momentum, lr", [(2, False, 0.0, 0.3), (4, False, 0.0, 0.5),
                                                        (4, True, 0.0, 0.5), (1, False, 0.0, 0.4),
                                                        (2, False, 0.5, 0.2), (4, True, 0.3, 0.3)])
def test_additive_model_equals_enumeration_over_all_permutations(B, drop_last, momentum, lr):
    """N = 7: every one of the 5040 orders; exact to rounding, short last batch, drop_last and momentum."""
    rng = np.random.default_rng(DATA_SEED)
    X = rng.normal(size=(7, 2))
    y = X @ np.array([1.0, -0.5]) + rng.normal(size=7)
    star = np.linalg.lstsq(X, y, rcond=None)[0]
    G = (X @ star - y)[:, None] * X
    H, sigma = X.T @ X / 7, G.T @ G / 7
    sizes = epoch_batches(7, B, drop_last)
    exact = enumerate_additive(H, G, lr, momentum, sizes)
    model = additive_reshuffled(H, sigma, 7, lr, momentum, sizes)
    assert np.allclose(model, exact, rtol=1e-9, atol=1e-15 * np.abs(exact).max())
    assert np.trace(exact) > 0


def test_a_full_batch_epoch_has_no_noise_and_unstable_lr_has_no_prediction(linreg):
    *_, model = linreg
    assert np.allclose(additive_reshuffled(model.H, model.sigma_star, model.n, 0.3, 0.0, epoch_batches(400, 400, False)), 0)
    full = predict_ball(model, 400, 0.3, 0.0, "shuffle")
    assert full.radius == 0.0 and full.radius_iid == 0.0 and "short last batch" not in full.note
    lam_max = np.linalg.eigvalsh(model.H)[-1]
    assert additive_reshuffled(model.H, model.sigma_star, model.n, 2.01 / lam_max, 0.0, epoch_batches(400, 8, False)) is None
    limit = shuffled_limit(model, predict_ball(model, 1, 0.1, 0.0, "shuffle"), 1, 0.0, False)[0]   # shuffled
    over = predict_ball(model, 1, 1.02 * limit, 0.0, "shuffle")
    assert over.radius is None and not over.stable and over.note.startswith("unstable")
