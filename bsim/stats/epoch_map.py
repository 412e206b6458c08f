"""The reshuffled ball computed numerically: shuffled epochs as random affine maps, averaged over sampled permutations.

Near theta* on a quadratic model one step is affine in the state z = e (with
momentum z = (e, v), PyTorch's heavy ball v' = m v + g, e' = e - lr v'), with
g = H_B e + xi_B (H_B = mean_{i in B} a_i a_i^T + the constant part of H, xi_B
the batch mean of the per-example gradients at theta*). A shuffled epoch of
batches b_0..b_{K-1} of a permutation pi is then the affine map

    z_K = M_pi z_0 + b_pi,

pi fresh each epoch and independent of z_0. In the augmented coordinates
z^ = (z, 1) the map is M^_pi = [[M_pi, b_pi], [0, 1]], and the stationary
moments at epoch starts, mu = E z_0 and S = E z_0 z_0^T, solve exactly

    mu = E[M] mu + E[b],
    S  = E[M S M^T] + E[M mu b^T] + E[b mu^T M^T] + E[b b^T],

a solution existing exactly while rho(E[M kron M]) < 1: that spectral radius
is the stability criterion of shuffled epochs (the iid one is a different
operator). The second moment of e averaged over the K positions of an epoch,
what bsim's ball measures, is <W, S^> / K with W = E[sum_k M^_k^T P M^_k]
(M^_k the map of the first k batches, P the projection on e, S^ = E z^ z^T).

Nothing here is approximated but the expectation over permutations: E is the
mean over P sampled permutations (a fixed seed per (N, B, drop_last), the same
permutations at every lr, so the prediction is deterministic and smooth in lr)
and the standard error is a jackknife over GROUPS groups of them. No closed
form is known with the multiplicative part (H_B - H) e treated exactly: the
batches of an epoch are drawn without replacement, so e_k is correlated with
every later batch of its epoch (docs/science.md, "The reshuffled ball").

Cost: O(P N d^2 + P K d^3) for the maps (K batches an epoch) and O(P d^4) for
E[M kron M]; P (256 to 4096) is chosen by the standard error and BUDGET. Measured
on a loaded 2-core machine: 0.35-0.9 s a setting at d = 2, N = 1024; 0.5-2 s at
d = 7, N = 150 (up to 4096 permutations); the shuffled limit (a root search on
256 permutations) as much again. Computed once per setting, off the step loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from bsim.stats import lyapunov

#: groups of permutations for the jackknife standard error
GROUPS = 16
#: permutations are drawn in chunks of CHUNK, chunk j from the seed (SEED, N, B, drop_last, j): any number of
#: chunks is a prefix of the same sequence (deterministic, and the same permutations at every lr)
CHUNK = 256
SEED = 20231
#: chunks at most (MAX_CHUNKS CHUNK = 4096 permutations); a quick prediction (the ball's law's curves) takes one
MAX_CHUNKS = 16
#: more chunks are drawn until the SE of E|e|^2 is below this fraction of it (0.5% in the radius)
TARGET_REL_SE = 0.01
#: floating-point operations one prediction may take (about a second of numpy), and what a step costs besides
BUDGET = 4e9
STEP_OVERHEAD = 3e4
#: up to this dimension the maps are computed with the permutations on the last axis (``_epoch_maps_small``)
SMALL_DIM = 4
#: permutation entries (N per permutation) one pass over an epoch holds at most (int32: 80 MB)
BLOCK_INTS = 2e7
#: chunks the stability limit is searched on (the first of the prediction's)
LIMIT_CHUNKS = 1


@dataclass(frozen=True)
class EpochModel:
    """What the epoch map needs of a quadratic model: per-example Hessian factors a (N x d), the constant
    part of H (``shift``, d x d: H = a^T a / N + shift) and the centred per-example gradients g (N x d)."""

    a: np.ndarray
    shift: np.ndarray
    g: np.ndarray

    @property
    def n(self) -> int:
        return self.a.shape[0]

    @property
    def dim(self) -> int:
        return self.a.shape[1]


def chunks_for(model: EpochModel, batch_sizes: np.ndarray, momentum: float, cov: bool) -> int:
    """How many chunks of permutations fit BUDGET (at most MAX_CHUNKS); 0 when not even one does."""
    d, n_ex, K = model.dim, model.n, int(batch_sizes.size)
    n = d * (2 if momentum else 1)
    per = 2.0 * (2 * n_ex * d * (n + 1) + K * d * (n + 1) ** 2 * (d if cov else 1) + K * d * n) + n ** 4
    return int(min(MAX_CHUNKS, (BUDGET - K * STEP_OVERHEAD * 2) / (CHUNK * per)))


def chunk(n_ex: int, key: tuple, j: int) -> np.ndarray:
    """Chunk j: CHUNK permutations of range(n_ex) from the seed (SEED, *key, j)."""
    rng = np.random.default_rng([SEED, *[int(k) for k in key], j])
    return rng.permuted(np.tile(np.arange(n_ex, dtype=np.int32), (CHUNK, 1)), axis=1)


def epoch_maps(model: EpochModel, lr: float, momentum: float, batch_sizes: np.ndarray, perms: np.ndarray,
               positions: bool = True, cov: bool = False):
    """Per permutation: M (P, n, n), b (P, n) and, with ``positions``, W (P, n+1, n+1) = sum_k M^_k^T P M^_k;
    with ``cov`` also Z (P, d, d, n+1, n+1) = sum_k (P M^_k) kron (P M^_k), for the position-averaged
    covariance (k = 0..K-1: the maps of the first k batches; M^_0 = I)."""
    if model.dim <= SMALL_DIM:
        return _epoch_maps_small(model, lr, momentum, batch_sizes, perms, positions, cov)
    d, P = model.dim, perms.shape[0]
    n = 2 * d if momentum else d
    na = n + 1
    E = np.zeros((P, d, na))
    E[:, :, :d] = np.eye(d)
    V = None
    if momentum:
        V = np.zeros((P, d, na))
        V[:, :, d:n] = np.eye(d)
    W = np.zeros((P, na, na)) if positions else None
    Z = np.zeros((P, d, d, na, na)) if cov else None
    shift = model.shift if np.any(model.shift) else None
    start = 0
    for b in batch_sizes.astype(int):
        if positions:
            W += np.matmul(E.transpose(0, 2, 1), E)
        if cov:
            Z += E[:, :, None, :, None] * E[:, None, :, None, :]
        idx = perms[:, start:start + b]
        start += b
        aB = model.a[idx]                                          # (P, b, d)
        G = np.matmul(aB.transpose(0, 2, 1), np.matmul(aB, E)) * (1.0 / b)
        if shift is not None:
            G += np.matmul(shift, E)
        G[:, :, n] += model.g[idx].mean(1)
        if momentum:
            V = momentum * V + G
            E = E - lr * V
        else:
            E = E - lr * G
    rows = E if not momentum else np.concatenate([E, V], axis=1)      # (P, n, n+1)
    return rows[:, :, :n], rows[:, :, n], W, Z


def _epoch_maps_small(model: EpochModel, lr: float, momentum: float, batch_sizes: np.ndarray, perms: np.ndarray,
                      positions: bool, cov: bool):
    """``epoch_maps`` for small d: the permutations on the last axis and explicit sums over d, which avoids
    numpy's per-matrix cost on stacks of tiny matrices (about 10x faster at d = 2); the same results."""
    d, P = model.dim, perms.shape[0]
    n = 2 * d if momentum else d
    na = n + 1
    E = np.zeros((d, na, P))
    E[np.arange(d), np.arange(d)] = 1.0
    V = None
    if momentum:
        V = np.zeros((d, na, P))
        V[np.arange(d), d + np.arange(d)] = 1.0
    W = np.zeros((na, na, P)) if positions else None
    Z = np.zeros((d, d, na, na, P)) if cov else None
    shift = model.shift if np.any(model.shift) else None
    a, g = model.a, model.g
    start = 0
    for b in batch_sizes.astype(int):
        if positions:
            for k in range(d):
                W += E[k, :, None, :] * E[k, None, :, :]
        if cov:
            Z += E[:, None, :, None, :] * E[None, :, None, :, :]
        idx = perms[:, start:start + b].T                         # (b, P)
        start += b
        aB = a[idx].transpose(0, 2, 1)                            # (b, d, P)
        t = aB[:, 0, None, :] * E[0][None]
        for k in range(1, d):
            t += aB[:, k, None, :] * E[k][None]                    # t[j, c] = a_j . E[:, c]
        G = np.empty_like(E)
        for k in range(d):
            G[k] = (aB[:, k, None, :] * t).sum(0) * (1.0 / b)
        if shift is not None:
            G += np.tensordot(shift, E, axes=(1, 0))
        G[:, n, :] += g[idx].mean(0).T
        if momentum:
            V = momentum * V + G
            E = E - lr * V
        else:
            E = E - lr * G
    rows = E if not momentum else np.concatenate([E, V], axis=0)      # (n, n+1, P)
    rows = rows.transpose(2, 0, 1)
    return (rows[:, :, :n], rows[:, :, n], None if W is None else W.transpose(2, 0, 1),
            None if Z is None else Z.transpose(4, 0, 1, 2, 3))


def _svec_operator(YtY: np.ndarray, n: int) -> np.ndarray:
    """(L, n^2, n^2) sums of M_ik M_jl indexed [(i, k), (j, l)] -> (L, s, s): S -> sum M S M^T on symmetric S in
    the svec coordinates of ``lyapunov`` (s = n(n+1)/2)."""
    K = YtY.reshape(-1, n, n, n, n).transpose(0, 1, 3, 2, 4)       # K[., i, j, k, l] = sum M_ik M_jl
    i, j = lyapunov.pairs(n)
    al = np.where(i == j, 1.0, lyapunov.SQRT2)
    Kp = K[:, i, j]                                                  # (L, pairs, n, n)
    return (Kp[:, :, i, j] + Kp[:, :, j, i]) * (al[:, None] / 2.0) * al[None, :]


@dataclass(frozen=True)
class Moments:
    """Sums, over L sets of permutations (the leading axis: GROUPS groups, or 1 for all), of what the
    stationary solution needs: S -> M S M^T in svec coordinates, M, b, M_ik b_j, b b^T, W and Z."""

    count: np.ndarray   # (L,)
    MM: np.ndarray
    M: np.ndarray
    b: np.ndarray
    Mb: np.ndarray      # (L, n, n, n): sum of M_ik b_j as [i, k, j]
    bb: np.ndarray
    W: np.ndarray
    Z: np.ndarray | None

    @staticmethod
    def of(M, b, W, Z) -> Moments:
        """Group sums: permutation p goes to group p mod GROUPS (P a multiple of GROUPS)."""
        P, n, _ = M.shape
        k = P // GROUPS

        def g(x):
            return x.reshape(k, GROUPS, *x.shape[1:]).sum(0)
        Y = M.reshape(k, GROUPS, n * n).transpose(1, 0, 2)            # (G, k, n^2)
        Bg = b.reshape(k, GROUPS, n).transpose(1, 0, 2)
        return Moments(count=np.full(GROUPS, float(k)), MM=_svec_operator(np.matmul(Y.transpose(0, 2, 1), Y), n),
                       M=g(M), b=g(b), Mb=np.matmul(Y.transpose(0, 2, 1), Bg).reshape(GROUPS, n, n, n),
                       bb=np.matmul(Bg.transpose(0, 2, 1), Bg), W=g(W), Z=None if Z is None else g(Z))

    def plus(self, o: Moments, sign: int = 1) -> Moments:
        return Moments(count=self.count + sign * o.count, MM=self.MM + sign * o.MM, M=self.M + sign * o.M,
                       b=self.b + sign * o.b, Mb=self.Mb + sign * o.Mb, bb=self.bb + sign * o.bb,
                       W=self.W + sign * o.W, Z=None if self.Z is None else self.Z + sign * o.Z)

    def total(self) -> Moments:
        def t(x):
            return None if x is None else x.sum(0, keepdims=True)
        return Moments(count=t(self.count), MM=t(self.MM), M=t(self.M), b=t(self.b), Mb=t(self.Mb), bb=t(self.bb),
                       W=t(self.W), Z=t(self.Z))

    def leave_one_out(self) -> Moments:
        """The L sets each without one group (from the groups' moments)."""
        return self.total().plus(self, -1)


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
    return rho, _jackknife(rho + d)


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


def accumulate(model: EpochModel, lr: float, momentum: float, sizes: np.ndarray, key: tuple, chunks: range,
               groups: Moments | None = None, positions: bool = True, cov: bool = False) -> Moments:
    """The GROUPS groups' moments over ``chunks`` (one pass per block of at most BLOCK_INTS permutation
    entries), added to ``groups``."""
    out = groups
    per_block = max(1, int(BLOCK_INTS // (CHUNK * model.n)))
    todo = list(chunks)
    for start in range(0, len(todo), per_block):
        perms = np.concatenate([chunk(model.n, key, j) for j in todo[start:start + per_block]])
        M, b, W, Z = epoch_maps(model, lr, momentum, sizes, perms, positions, cov)
        if W is None:
            W = np.zeros((M.shape[0], 1, 1))
        part = Moments.of(M, b, W, Z)
        out = part if out is None else out.plus(part)
    return out


def _jackknife(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(math.sqrt((len(v) - 1) / len(v) * ((v - v.mean()) ** 2).sum()))


def _result(groups: Moments, K: int) -> SampledBall:
    rho, rho_se = rho_jackknife(groups)
    count = int(groups.count.sum())
    res = stationary(groups.total(), K) if rho < 1.0 else None
    if res is None or not np.isfinite(res[0][0]):
        return SampledBall(None, None, rho, rho_se, None, count)
    parts = stationary(groups.leave_one_out(), K)
    se = _jackknife(parts[0]) if parts is not None and np.all(np.isfinite(parts[0])) else None
    return SampledBall(float(res[0][0]), se, rho, rho_se, None if res[1] is None else res[1][0], count)


def sampled_ball(model: EpochModel, lr: float, momentum: float, sizes: np.ndarray, key: tuple, most: int,
                 cov: bool = False, quick: bool = False) -> SampledBall:
    """The stationary ball of shuffled epochs over sampled permutations: one chunk, then (unless ``quick``)
    as many as bring the SE of E|e|^2 to TARGET_REL_SE of it, at most ``most`` chunks."""
    K = int(sizes.size)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        groups = accumulate(model, lr, momentum, sizes, key, range(1), cov=cov)
        out = _result(groups, K)
        if quick or out.mean_square is None or not out.mean_square or out.mean_square_se is None:
            return out
        need = min(most, math.ceil((out.mean_square_se / out.mean_square / TARGET_REL_SE) ** 2))
        if need <= 1:
            return out
        return _result(accumulate(model, lr, momentum, sizes, key, range(1, need), groups, cov=cov), K)


def shuffle_rho(model: EpochModel, lr: float, momentum: float, sizes: np.ndarray, key: tuple, chunks: int) -> float:
    """rho(E[M kron M]) at lr over the first ``chunks`` chunks (the maps alone, no position average)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        tot = accumulate(model, lr, momentum, sizes, key, range(chunks), positions=False).total()
        return perron(tot.MM[0] / tot.count[0])[0]


def shuffle_limit(model: EpochModel, momentum: float, sizes: np.ndarray, key: tuple, chunks: int, start: float,
                  rtol: float = 1e-3) -> tuple[float, float]:
    """(the largest lr with rho(E[M kron M]) < 1, its standard error) on the first ``chunks`` chunks.

    ``start``: a guess (the iid limit); the bracket grows or shrinks from it by factors of 1.25, then
    regula falsi (Illinois) on ln rho(lr), to ``rtol`` in lr or 0.1% in rho. The SE is the jackknife
    SE of rho at the limit over d rho / d lr there (a secant of the last bracket)."""
    def f(lr: float) -> float:
        r = shuffle_rho(model, lr, momentum, sizes, key, chunks)
        return math.log(r) if 0.0 < r < math.inf else (50.0 if r == math.inf else -50.0)

    lo = hi = start
    flo = fhi = f(start)
    while fhi < 0.0:
        lo, flo = hi, fhi
        hi *= 1.25
        fhi = f(hi)
        if hi > 64 * start:
            return math.inf, math.inf
    while flo >= 0.0:
        hi, fhi = lo, flo
        lo /= 1.25
        flo = f(lo)
        if lo < start / 64:
            return lo, math.inf
    side = 0
    for _ in range(40):
        if hi - lo <= rtol * hi:
            break
        x = hi - fhi * (hi - lo) / (fhi - flo)
        x = min(max(x, lo + 0.01 * (hi - lo)), hi - 0.01 * (hi - lo))
        fx = f(x)
        if fx < 0.0:
            lo, flo = x, fx
            if side < 0:
                fhi /= 2.0
            side = -1
        else:
            hi, fhi = x, fx
            if side > 0:
                flo /= 2.0
            side = 1
        if abs(fx) < 1e-3:
            break
    limit = lo if abs(flo) <= abs(fhi) else hi
    other = hi if limit == lo else lo
    with np.errstate(over="ignore", invalid="ignore"):
        groups = accumulate(model, limit, momentum, sizes, key, range(chunks), positions=False)
        rho, rho_se = rho_jackknife(groups)
        slope = (shuffle_rho(model, other, momentum, sizes, key, chunks) - rho) / (other - limit) \
            if other != limit else 0.0
    return limit, (rho_se / slope if slope > 0 else math.inf)

#: the label of the sampled prediction (what it is, on screen and in the help)
LABEL = "reshuffled: the epoch map's stationary moments over sampled permutations (computed numerically, ±SE)"


def epoch_model(H: np.ndarray, a: np.ndarray, g: np.ndarray) -> EpochModel:
    """The epoch map's view of a quadratic model: H = a^T a / N + shift, g centred (they sum to 0 at theta*)."""
    n = a.shape[0]
    return EpochModel(a=np.ascontiguousarray(a, dtype=np.float64), shift=H - a.T @ a / n,
                      g=np.ascontiguousarray(g - g.mean(0), dtype=np.float64))


def _setting(model: EpochModel, batch_size: int, momentum: float, drop_last: bool, cov: bool):
    from bsim.stats.reshuffled import epoch_batches
    sizes = epoch_batches(model.n, batch_size, drop_last)
    return sizes, (model.n, batch_size, drop_last), chunks_for(model, sizes, momentum, cov)


def predict(model: EpochModel, batch_size: int, lr: float, momentum: float, drop_last: bool,
            cov: bool = False, quick: bool = False) -> SampledBall | None:
    """The sampled reshuffled ball at this setting; None when not one chunk fits BUDGET (too large a problem).
    ``quick``: one chunk (CHUNK permutations, the first of the full set), for curves. B = N: one batch of
    every example, no noise: the ball is the point theta* (0, not the rounding of the maps)."""
    sizes, key, most = _setting(model, batch_size, momentum, drop_last, cov)
    if sizes.size == 1 and sizes[0] == model.n:
        most, quick = 1, True
    if most < 1:
        return None
    out = sampled_ball(model, lr, momentum, sizes, key, most, cov, quick)
    if sizes.size == 1 and sizes[0] == model.n and out.stable:
        out = replace(out, mean_square=0.0, mean_square_se=0.0,
                      covariance=None if out.covariance is None else np.zeros_like(out.covariance))
    return out


def limit(model: EpochModel, batch_size: int, momentum: float, drop_last: bool,
          start: float) -> tuple[float, float] | None:
    """(the shuffled stability limit, its SE) on the first LIMIT_CHUNKS chunks; None over BUDGET."""
    sizes, key, most = _setting(model, batch_size, momentum, drop_last, False)
    if most < 1:
        return None
    return shuffle_limit(model, momentum, sizes, key, min(most, LIMIT_CHUNKS), start)
