"""The reshuffled ball: SGD's stationary second moment under shuffled epochs (docs/science.md, "The reshuffled ball").

Least squares near theta*: e' = e - lr (H_B e + xi), xi the batch mean of the
per-example gradients at theta* (they sum to zero over the N examples). Under
shuffle sampling an epoch takes consecutive batches of sizes b_0..b_{K-1} of a
fresh permutation (a short last batch, or the remainder skipped with
drop_last). Drawn without replacement, for any batch sizes,

    E[xi_j xi_k^T] = Sigma* / (N - 1) * (delta_jk N / b_j - 1),

so Var(xi_j) = c_{b_j} Sigma* and Cov(xi_j, xi_k) = -Sigma*/(N-1): the noise
of a full epoch sums to zero, and the ball is smaller than with iid batches.

The additive model keeps the mean Hessian only (H_B -> H). With momentum m
(PyTorch's heavy ball) e_{t+1} = (1+m) e_t - m e_{t-1} - lr (H e_t + xi_t); in
H's eigenbasis each direction p is the scalar impulse response h_p(t),
h_p(0) = 1, h_p(t+1) = (1 + m - lr lambda_p) h_p(t) - m h_p(t-1) (h_p(t) =
(1 - lr lambda_p)^t without momentum), and

    e_k = h(k) e_0 - m h(k-1) e_{-1} - lr sum_{j<k} h(k-1-j) xi_j.

Epochs are independent, so the state z_0 = (e_0, e_{-1}) at an epoch's start
is periodic: per eigenpair (p, q) a 2 x 2 Stein equation P = Phi_p P Phi_q^T
+ C. The second moment averaged over the K positions of an epoch is then a
sum over positions, done in closed form as K x d matrix products (no
subtractions of nearly equal geometric sums): O(K d^2), milliseconds at
d = 40 and K = 10^4.

The multiplicative part (H_B - H) e is left out of that model; it matters at
B = 1 near the stability limit (the additive model was 34% low there). This
analytic approximation multiplies the additive reshuffled second moment by the
iid ratio exact / additive (bsim.stats.lyapunov): a correction, not a
derivation. It is no longer the prediction shown: bsim.stats.epoch_stationary computes
the ball numerically over sampled permutations with the multiplicative part
exact, and this approximation is shown beside it with its distance (an audit at
d = 3-7, small N, drop_last and momentum found it 2-7% low at moderate lr and 23%
high near the iid limit; docs/science.md has the table). Why a ratio: when an epoch is short against the
relaxation time, e barely moves within it and the multiplicative noise
sum_k (H_Bk - H) e cancels over the epoch like the additive one; when it is
long, shuffle and iid differ little and any correction agrees. Against
independent ensembles (2000 x 3000 chain-steps at B = 1, d = 2..5) it came
within 3% of the radius everywhere tried: 0.4-0.7% low at N = 1000, 1-1.3% low
at N = 400 (2% high at B = 1, 0.8x the limit), up to 3% low at N = 200, d = 5:
the residual shrinks with N (left out: the within-epoch correlation, O(1/N) per
pair, of each batch's Hessian with the past batches; not a drift of the mean,
whose square stayed under 0.05% of the mean square at N = 200).
The additive part alone is exact: tests/stats/test_stats_reshuffled.py compares it
with an enumeration of every order of N = 7 examples.

Whole epochs at one B are assumed. After a change of B mid-epoch the epoch in
progress mixes two sizes: the prediction (the new B's) holds from the next
epoch boundary; until then NoiseStats labels it (``BallInfo.holds_from``) and
the measured ball's burn-in starts at that boundary
(tests/stats/test_stats_reshuffled_midepoch.py checks it against bsim's ensemble).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bsim.stats.lyapunov import eigh_once

#: the label of the shown prediction under shuffle sampling
LABEL = "reshuffled (approx.): additive-noise model over shuffled epochs x multiplicative correction (exact/additive iid)"


def epoch_batches(n: int, batch_size: int, drop_last: bool) -> np.ndarray:
    """Batch sizes b_0..b_{K-1} of one shuffled epoch: N // B batches of B, then the remainder
    (a short last batch), or nothing when ``drop_last``."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch size {batch_size} outside 1..N = {n}")
    full, rest = divmod(n, batch_size)
    sizes = [batch_size] * full
    if rest and not drop_last:
        sizes.append(rest)
    return np.asarray(sizes, dtype=np.float64)


def impulse_responses(lam: np.ndarray, lr: float, momentum: float, steps: int) -> np.ndarray:
    """h[t, p] for t = 0..steps-1: the response of e_p, t steps after a unit kick, to the mean map
    (h = (1 - lr lambda_p)^t without momentum; the heavy-ball recurrence with it)."""
    t = np.arange(steps, dtype=np.float64)
    if momentum == 0.0:
        return np.power((1.0 - lr * lam)[None, :], t[:, None])
    h = np.empty((steps, lam.size))
    prev, cur = np.zeros(lam.size), np.ones(lam.size)
    a = 1.0 + momentum - lr * lam
    for k in range(steps):
        h[k] = cur
        prev, cur = cur, a * cur - momentum * prev
    return h


def _stein_2x2(phi: np.ndarray, C: np.ndarray) -> np.ndarray | None:
    """P[p, q] (2 x 2) with P = Phi_p P Phi_q^T + C[p, q] for every pair; phi is (d, 2, 2), C (d, d, 2, 2).

    Row-major vec: vec(Phi_p P Phi_q^T) = (Phi_p kron Phi_q) vec(P)."""
    d = phi.shape[0]
    kron = np.einsum("pac,qbd->pqabcd", phi, phi).reshape(d, d, 4, 4)
    try:
        P = np.linalg.solve(np.eye(4) - kron, C.reshape(d, d, 4, 1))
    except np.linalg.LinAlgError:
        return None
    return P.reshape(d, d, 2, 2)


def _pairs(M: np.ndarray, d: int) -> np.ndarray:
    """A (2d x 2d) matrix indexed ((p, a), (q, b)) as (d, d, 2, 2) indexed [p, q, a, b]."""
    return M.reshape(d, 2, d, 2).transpose(0, 2, 1, 3)


def additive_reshuffled(H: np.ndarray, sigma_star: np.ndarray, n: int, lr: float, momentum: float,
                        batch_sizes: np.ndarray) -> np.ndarray | None:
    """E[e e^T] of the additive model, averaged over the positions of a shuffled epoch (d x d),
    or None when the mean map is unstable. ``batch_sizes``: b_0..b_{K-1} (``epoch_batches``)."""
    lam, U = eigh_once(H)
    d, K = lam.size, int(batch_sizes.size)
    if momentum == 0.0:
        stable = np.all(np.abs(1.0 - lr * lam) < 1.0)
    else:   # both roots of r^2 - (1 + m - lr lam) r + m inside the unit circle
        stable = 0.0 <= momentum < 1.0 and np.all((lr * lam > 0) & (lr * lam < 2.0 * (1.0 + momentum)))
    if not stable or K == 0:
        return None
    sig = U.T @ sigma_star @ U                       # Sigma* in H's eigenbasis
    h = impulse_responses(lam, lr, momentum, K + 1)  # h[t], t = 0..K
    hm1 = np.vstack([np.zeros((1, d)), h[:-1]])       # h[t - 1], with h[-1] = 0
    inv_b = 1.0 / batch_sizes
    scale = lr * lr * sig / (n - 1) if n > 1 else np.zeros_like(sig)
    # the epoch map on z = (e, e_prev): z_K = Phi z_0 - lr sum_j v(j) xi_j, v(j) = (h(K-1-j), h(K-2-j))
    phi = np.stack([np.stack([h[K], -momentum * h[K - 1]], -1),
                    np.stack([h[K - 1], -momentum * hm1[K - 1]], -1)], -2)          # (d, 2, 2)
    v = np.stack([h[K - 1::-1], hm1[K - 1::-1]], -1).reshape(K, 2 * d)            # row j: v(j), index (p, a)
    own = _pairs(v.T @ (inv_b[:, None] * v), d)                                    # sum_j v_p(j) v_q(j)^T / b_j
    tot = v.sum(0).reshape(d, 2)                                                   # sum_j v_p(j)
    C = scale[:, :, None, None] * (n * own - tot[:, None, :, None] * tot[None, :, None, :])
    P = _stein_2x2(phi, C)
    if P is None or not np.all(np.isfinite(P)):
        return None
    # average over positions k = 0..K-1 of e_k = u0(k) e_0 + u1(k) e_{-1} - lr sum_{j<k} h(k-1-j) xi_j
    u = np.stack([h[:K], -momentum * hm1[:K]], -1).reshape(K, 2 * d)
    homog = (P * _pairs(u.T @ u, d)).sum((2, 3))
    W = np.concatenate([np.cumsum(inv_b)[:K - 1][::-1], [0.0]])                   # W_m = sum_{j <= K-2-m} 1/b_j
    hk = h[:K]
    pair_sum = hk.T @ (W[:, None] * hk)                                            # sum_k sum_{j<k} h h / b_j
    s = np.vstack([np.zeros((1, d)), np.cumsum(hk, 0)[:K - 1]])                    # s(k) = sum_{t<k} h(t)
    cross = s.T @ s
    avg = (homog + scale * (n * pair_sum - cross)) / K
    return U @ avg @ U.T


@dataclass(frozen=True)
class Reshuffled:
    """The reshuffled prediction for one setting: the additive model, the correction and their product."""

    covariance: np.ndarray          # corrected, position-averaged E[e e^T]
    radius: float
    radius_additive: float          # the additive reshuffled model alone
    correction: float               # tr S_exact_iid / tr S_additive_iid (1 for the additive-only fallback)
    batch_sizes: tuple[int, ...]    # b_0..b_{K-1}, compressed for the note
    note: str


def predict(H: np.ndarray, sigma_star: np.ndarray, n: int, batch_size: int, lr: float, momentum: float,
            drop_last: bool, exact_iid: np.ndarray | None, additive_iid: np.ndarray | None) -> Reshuffled | None:
    """The reshuffled ball: the additive reshuffled second moment times tr(exact iid) / tr(additive iid).

    None when the additive model is unstable. Without the iid pair (d too large for the exact
    system) the additive model is returned uncorrected, and the note says so."""
    sizes = epoch_batches(n, batch_size, drop_last)
    S = additive_reshuffled(H, sigma_star, n, lr, momentum, sizes)
    if S is None:
        return None
    tr_add = float(np.trace(S))
    notes = []
    if exact_iid is not None and additive_iid is not None:   # both 0 at B = N: no noise, nothing to correct
        tr_iid = float(np.trace(additive_iid))
        corr = float(np.trace(exact_iid)) / tr_iid if tr_iid > 0 else 1.0
    else:
        corr = 1.0
        notes.append("no multiplicative correction (the exact iid system was not solved): "
                     "the additive model alone, low at small B and large lr")
    rest = n - int(sizes.sum())
    if sizes.size and sizes[-1] != batch_size:
        notes.append(f"short last batch of {int(sizes[-1])} each epoch")
    elif rest:
        notes.append(f"drop_last: {rest} examples skipped each epoch")
    S = corr * S
    return Reshuffled(covariance=S, radius=math.sqrt(max(float(np.trace(S)), 0.0)),
                      radius_additive=math.sqrt(max(tr_add, 0.0)), correction=corr,
                      batch_sizes=(int(sizes[0]), int(sizes[-1]), int(sizes.size)), note="; ".join(notes))
