"""The stationary ball of shuffled epochs over sampled permutations, and its jackknife standard error.

With the epoch map z_K = M_pi z_0 + b_pi (``epoch_map``), pi fresh each epoch
and independent of z_0, the stationary moments at epoch starts, mu = E z_0 and
S = E z_0 z_0^T, solve exactly

    mu = E[M] mu + E[b],
    S  = E[M S M^T] + E[M mu b^T] + E[b mu^T M^T] + E[b b^T],

a solution existing exactly while rho(E[M kron M]) < 1: that spectral radius
is the stability criterion of shuffled epochs (the iid one is a different
operator). The second moment of e averaged over the K positions of an epoch,
what bsim's ball measures, is <W, S^> / K with W = E[sum_k M^_k^T P M^_k]
(M^_k the map of the first k batches, P the projection on e, S^ = E z^ z^T).

Nothing here is approximated but the expectation over permutations: E is the
mean over P sampled permutations (fixed seeds per N, the same permutations at
every lr and B, so the prediction is deterministic and smooth in lr and B)
and the standard error is a jackknife over GROUPS groups of them. The additive
model (H_B -> H), whose reshuffled ball is exact (``reshuffled.additive_reshuffled``),
is the control variate: the prediction is sampled - sampled additive (the same
permutations) + exact additive, whose sampling error is that of the
multiplicative part alone (SE 3-10x smaller on the default scenario, so 10-100x
fewer permutations for the same SE); the plain mean where its SE is smaller. No closed
form is known with the multiplicative part (H_B - H) e treated exactly: the
batches of an epoch are drawn without replacement, so e_k is correlated with
every later batch of its epoch (docs/science.md, "The reshuffled ball").

Cost: O(P N d^2 + P K d^3) for the maps (K batches an epoch, twice: the model
and its control) and O(P d^4) for E[M kron M]; P (256 to 4096) is chosen by the
standard error and BUDGET. Measured (bench/reshuffled.py) on the default
scenario, d = 2, N = 1024: 40-150 ms a setting (256 permutations suffice at
lr 0.05), 0.15-0.35 s at B = 1 (1024 batches an epoch); near the limit the
control helps less (up to 4096 permutations, about a second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from bsim.stats import lyapunov
from bsim.stats.epoch_map import EpochModel, setting
from bsim.stats.epoch_moments import Moments, accumulate
from bsim.stats.reshuffled import additive_reshuffled

#: the exact additive model as control variate (``_result``); False: plain sampling (bench/reshuffled.py's baseline)
CONTROL = True
#: more chunks are drawn until the SE of E|e|^2 is below this fraction of it (0.5% in the radius)
TARGET_REL_SE = 0.01
#: the label of the sampled prediction (what it is, on screen and in the help)
LABEL = "reshuffled: the epoch map's stationary moments over sampled permutations (computed numerically, ±SE)"


def perron(T: np.ndarray) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """(rho, right and left eigenvectors) of a positive map's matrix T: rho is its largest eigenvalue (real)."""
    if not np.all(np.isfinite(T)):
        return math.inf, None, None
    w, V = np.linalg.eig(T)
    k = int(np.argmax(np.abs(w)))
    wl, U = np.linalg.eig(T.T)
    kl = int(np.argmin(np.abs(wl - w[k])))
    return float(abs(w[k])), np.real(V[:, k]), np.real(U[:, kl])


def rho_jackknife(groups: Moments) -> tuple[float, float]:
    """(rho(E[S -> M S M^T]), its jackknife SE), each leave-one-group-out rho to first order,
    rho + u.(T' - T) v / u.v (u, v the left and right Perron vectors)."""
    tot = groups.total()
    T = tot.MM[0] / tot.count[0]
    rho, v, u = perron(T)
    if v is None or not math.isfinite(rho) or abs(u @ v) < 1e-300:
        return rho, math.inf
    loo = groups.leave_one_out()
    d = np.einsum("i,lij,j->l", u, loo.MM / loo.count[:, None, None] - T, v) / float(u @ v)
    return rho, jackknife(rho + d)


def stationary(m: Moments, epoch_len: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Per set: (position-averaged E|e|^2 (L,), its covariance (L, d, d) when Z was kept), or None when a
    system is singular; an entry is NaN where there is no stationary solution."""
    c = m.count[:, None, None]
    L, n = m.M.shape[0], m.M.shape[1]
    i, j = lyapunov.pairs(n)
    al = np.where(i == j, 1.0, lyapunov.SQRT2)
    try:
        mu = np.linalg.solve(np.eye(n) - m.M / c, (m.b / m.count[:, None])[..., None])[..., 0]
        Mmub = np.einsum("likj,lk->lij", m.Mb / c[..., None], mu)
        C = Mmub + Mmub.transpose(0, 2, 1) + m.bb / c
        s = np.linalg.solve(np.eye(m.MM.shape[1]) - m.MM / c, (C[:, i, j] * al)[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return None
    Sa = np.zeros((L, n + 1, n + 1))
    Sa[:, i, j] = s / al
    Sa[:, j, i] = s / al
    Sa[:, :n, n], Sa[:, n, :n], Sa[:, n, n] = mu, mu, 1.0
    tr = (m.W / c * Sa).sum((1, 2)) / epoch_len
    tr = np.where(np.isfinite(tr) & (tr >= 0.0), tr, np.nan)
    cov = None if m.Z is None else np.einsum("ldeij,lij->lde", m.Z / c[..., None, None], Sa) / epoch_len
    return tr, cov


@dataclass(frozen=True)
class SampledBall:
    """The sampled-permutation prediction at one setting.

    mean_square: position-averaged E|theta - theta*|^2 (None when unstable), mean_square_se its jackknife
    standard error; rho: spectral radius of E[M kron M] (stable exactly while < 1), rho_se its standard error;
    covariance: the position-averaged E[e e^T] (small d) or None; perms: the permutations sampled."""

    mean_square: float | None
    mean_square_se: float | None
    rho: float
    rho_se: float
    covariance: np.ndarray | None
    perms: int

    @property
    def stable(self) -> bool:
        return self.rho < 1.0 and self.mean_square is not None

    @property
    def radius(self) -> float | None:
        return None if self.mean_square is None else math.sqrt(self.mean_square)

    @property
    def radius_se(self) -> float | None:
        """SE of the radius, SE(E|e|^2) / (2 radius) (the delta method)."""
        if self.mean_square is None or self.mean_square_se is None or self.mean_square <= 0:
            return None if self.mean_square != 0 else 0.0
        return self.mean_square_se / (2.0 * math.sqrt(self.mean_square))


def jackknife(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(math.sqrt((len(v) - 1) / len(v) * ((v - v.mean()) ** 2).sum()))


def _result(groups: Moments, K: int, control: Moments | None = None,
            exact: np.ndarray | None = None) -> SampledBall:
    """The prediction from the groups' moments; with ``control`` (the additive model's moments on the same
    permutations) and ``exact`` (its exact position-averaged E[e e^T], ``reshuffled.additive_reshuffled``):
    sampled - sampled additive + exact additive, kept where its jackknife SE is the smaller."""
    rho, rho_se = rho_jackknife(groups)
    count = int(groups.count.sum())
    res = stationary(groups.total(), K) if rho < 1.0 else None
    if res is None or not np.isfinite(res[0][0]):
        return SampledBall(None, None, rho, rho_se, None, count)
    parts = stationary(groups.leave_one_out(), K)
    ok = parts is not None and np.all(np.isfinite(parts[0]))
    se = jackknife(parts[0]) if ok else None
    ms, cov = float(res[0][0]), None if res[1] is None else res[1][0]
    if control is not None and exact is not None and ok:
        ares, aparts = stationary(control.total(), K), stationary(control.leave_one_out(), K)
        if ares is not None and aparts is not None and np.all(np.isfinite(aparts[0])) and np.isfinite(ares[0][0]):
            ms_cv = ms - float(ares[0][0]) + float(np.trace(exact))
            se_cv = jackknife(parts[0] - aparts[0])
            if ms_cv > 0.0 and (se is None or se_cv < se):
                ms, se = ms_cv, se_cv
                if cov is not None and ares[1] is not None:
                    cov = cov - ares[1][0] + exact
    return SampledBall(ms, se, rho, rho_se, cov, count)


def sampled_ball(model: EpochModel, lr: float, momentum: float, sizes: np.ndarray, key: tuple, most: int,
                 cov: bool = False, quick: bool = False) -> SampledBall:
    """The stationary ball of shuffled epochs over sampled permutations: one chunk, then (unless ``quick``)
    as many as bring the SE of E|e|^2 to TARGET_REL_SE of it, at most ``most`` chunks."""
    K = int(sizes.size)
    # the control variate costs a second pass: the quick predictions (the curves' other B) go without it
    exact = None if quick or not CONTROL else additive_reshuffled(model.hessian, model.sigma_star, model.n, lr,
                                                                   momentum, sizes)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        groups = accumulate(model, lr, momentum, sizes, key, range(1), cov=cov)
        control = None
        if exact is not None:
            control = accumulate(model, lr, momentum, sizes, key, range(1), cov=cov, additive=True)
        out = _result(groups, K, control, exact)
        if quick or out.mean_square is None or not out.mean_square or out.mean_square_se is None:
            return out
        need = min(most, math.ceil((out.mean_square_se / out.mean_square / TARGET_REL_SE) ** 2))
        if need <= 1:
            return out
        groups = accumulate(model, lr, momentum, sizes, key, range(1, need), groups, cov=cov)
        if control is not None:
            control = accumulate(model, lr, momentum, sizes, key, range(1, need), control, cov=cov, additive=True)
        return _result(groups, K, control, exact)


def predict(model: EpochModel, batch_size: int, lr: float, momentum: float, drop_last: bool,
            cov: bool = False, quick: bool = False) -> SampledBall | None:
    """The sampled reshuffled ball at this setting; None when not one chunk fits BUDGET (too large a problem).
    ``quick``: one chunk (CHUNK permutations, the first of the full set), for curves. B = N: one batch of
    every example, no noise: the ball is the point theta* (0, not the rounding of the maps)."""
    sizes, key, most = setting(model, batch_size, momentum, drop_last, cov)
    if sizes.size == 1 and sizes[0] == model.n:
        most, quick = 1, True
    if most < 1:
        return None
    out = sampled_ball(model, lr, momentum, sizes, key, most, cov, quick)
    if sizes.size == 1 and sizes[0] == model.n and out.stable:
        out = replace(out, mean_square=0.0, mean_square_se=0.0,
                      covariance=None if out.covariance is None else np.zeros_like(out.covariance))
    return out
