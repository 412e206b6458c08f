"""Shuffled epochs as random affine maps: the per-permutation maps of a quadratic model near theta*.

Near theta* on a quadratic model one step is affine in the state z = e (with
momentum z = (e, v), PyTorch's heavy ball v' = m v + g, e' = e - lr v'), with
g = H_B e + xi_B (H_B = mean_{i in B} a_i a_i^T + the constant part of H, xi_B
the batch mean of the per-example gradients at theta*). A shuffled epoch of
batches b_0..b_{K-1} of a permutation pi is then the affine map

    z_K = M_pi z_0 + b_pi,

pi fresh each epoch and independent of z_0. In the augmented coordinates
z^ = (z, 1) the map is M^_pi = [[M_pi, b_pi], [0, 1]]; M^_k is the map of the
first k batches. This module computes M_pi, b_pi and the position sums
W = sum_k M^_k^T P M^_k (P the projection on e) per sampled permutation;
``epoch_moments`` averages them, ``epoch_stationary`` solves for the stationary
moments and ``epoch_limit`` finds the shuffled stability limit.

Permutations come in chunks of CHUNK from fixed seeds (``chunk``): the same at
every lr, so a prediction is deterministic and smooth in lr.

Cost: O(P N d^2 + P K d^3) for the maps (K batches an epoch, P permutations).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bsim.stats.reshuffled import epoch_batches

#: permutations are drawn in chunks of CHUNK, chunk j from the seed (SEED, N, j): any number of
#: chunks is a prefix of the same sequence (deterministic, and the same permutations at every lr)
CHUNK = 256
SEED = 20231
#: chunks at most (MAX_CHUNKS CHUNK = 4096 permutations); a quick prediction (the ball's law's curves) takes one
MAX_CHUNKS = 16
#: floating-point operations one prediction may take (about a second of numpy), and what a step costs besides
BUDGET = 4e9
STEP_OVERHEAD = 3e4
#: bytes of permutation chunks kept between predictions (``chunk``)
CHUNK_CACHE = 64e6
_chunks: dict[tuple, np.ndarray] = {}
#: up to this dimension the maps are computed with the permutations on the last axis (``_epoch_maps_small``)
SMALL_DIM = 4


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

    @cached_property
    def hessian(self) -> np.ndarray:
        """H = a^T a / N + shift."""
        return self.a.T @ self.a / self.n + self.shift

    @cached_property
    def sigma_star(self) -> np.ndarray:
        """Sigma* = g^T g / N (g centred): the per-example gradients' covariance at theta*."""
        return self.g.T @ self.g / self.n


def chunks_for(model: EpochModel, batch_sizes: np.ndarray, momentum: float, cov: bool) -> int:
    """How many chunks of permutations fit BUDGET (at most MAX_CHUNKS); 0 when not even one does."""
    d, n_ex, K = model.dim, model.n, int(batch_sizes.size)
    n = d * (2 if momentum else 1)
    per = 2.0 * (2 * n_ex * d * (n + 1) + K * d * (n + 1) ** 2 * (d if cov else 1) + K * d * n) + n ** 4
    return int(min(MAX_CHUNKS, (BUDGET - K * STEP_OVERHEAD * 2) / (CHUNK * per)))


def chunk(n_ex: int, key: tuple, j: int) -> np.ndarray:
    """Chunk j: CHUNK permutations of range(n_ex) from the seed (SEED, *key, j), kept (CHUNK_CACHE bytes in
    all, the oldest dropped first): every batch size and lr of a problem reuses them (read-only)."""
    ck = (n_ex, tuple(int(k) for k in key), j)
    hit = _chunks.get(ck)
    if hit is None:
        rng = np.random.default_rng([SEED, *ck[1], j])
        hit = rng.permuted(np.tile(np.arange(n_ex, dtype=np.int32), (CHUNK, 1)), axis=1)
        hit.flags.writeable = False
        while _chunks and sum(x.nbytes for x in _chunks.values()) + hit.nbytes > CHUNK_CACHE:
            _chunks.pop(next(iter(_chunks)))
        if hit.nbytes <= CHUNK_CACHE:
            _chunks[ck] = hit
    return hit


def epoch_maps(model: EpochModel, lr: float, momentum: float, batch_sizes: np.ndarray, perms: np.ndarray,
               positions: bool = True, cov: bool = False, additive: bool = False):
    """Per permutation: M (P, n, n), b (P, n) and, with ``positions``, W (P, n+1, n+1) = sum_k M^_k^T P M^_k;
    with ``cov`` also Z (P, d, d, n+1, n+1) = sum_k (P M^_k) kron (P M^_k), for the position-averaged
    covariance (k = 0..K-1: the maps of the first k batches; M^_0 = I). ``additive``: the additive-noise
    model's maps (H_B -> H, the batches' noise xi_B kept), the control variate of ``epoch_stationary``."""
    if model.dim <= SMALL_DIM:
        return _epoch_maps_small(model, lr, momentum, batch_sizes, perms, positions, cov, additive)
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
        if additive:
            G = np.matmul(model.hessian, E)
        else:
            aB = model.a[idx]                                      # (P, b, d)
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
                      positions: bool, cov: bool, additive: bool):
    """``epoch_maps`` for small d: the permutations on the last axis and explicit sums over d, which avoids
    numpy's per-matrix cost on stacks of tiny matrices (about 10x faster at d = 2); the same results to rounding.
    (Blocks of steps chained at the end, sqrt(K) numpy passes instead of K, were tried: no faster at d = 2.)"""
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
    H = model.hessian if additive else shift
    a, g = model.a, model.g
    start = 0
    for b in batch_sizes.astype(int):
        if positions and not cov:
            for k in range(d):
                W += E[k, :, None, :] * E[k, None, :, :]
        if cov:
            Z += E[:, None, :, None, :] * E[None, :, None, :, :]
        idx = perms[:, start:start + b].T                         # (b, P)
        start += b
        G = np.zeros_like(E)
        if not additive:                                          # H_B (the additive model: H alone)
            aB = a[idx].transpose(0, 2, 1)                        # (b, d, P)
            t = aB[:, 0, None, :] * E[0][None]
            for k in range(1, d):
                t += aB[:, k, None, :] * E[k][None]                # t[j, c] = a_j . E[:, c]
            for k in range(d):
                G[k] = (aB[:, k, None, :] * t).sum(0) * (1.0 / b)
        if H is not None:
            for i in range(d):
                for k in range(d):
                    if H[i, k]:
                        G[i] += H[i, k] * E[k]
        G[:, n, :] += g[idx].mean(0).T
        if momentum:
            V = momentum * V + G
            E = E - lr * V
        else:
            E = E - lr * G
    if positions and cov:                                          # W = sum_k Z[k, k]
        W = sum(Z[k, k] for k in range(d))
    rows = E if not momentum else np.concatenate([E, V], axis=0)      # (n, n+1, P)
    rows = rows.transpose(2, 0, 1)
    return (rows[:, :, :n], rows[:, :, n], None if W is None else W.transpose(2, 0, 1),
            None if Z is None else Z.transpose(4, 0, 1, 2, 3))


def epoch_model(H: np.ndarray, a: np.ndarray, g: np.ndarray) -> EpochModel:
    """The epoch map's view of a quadratic model: H = a^T a / N + shift, g centred (they sum to 0 at theta*)."""
    n = a.shape[0]
    return EpochModel(a=np.ascontiguousarray(a, dtype=np.float64), shift=H - a.T @ a / n,
                      g=np.ascontiguousarray(g - g.mean(0), dtype=np.float64))


def setting(model: EpochModel, batch_size: int, momentum: float, drop_last: bool,
            cov: bool) -> tuple[np.ndarray, tuple, int]:
    """(the batch sizes of an epoch, the permutations' seed key, the chunks that fit BUDGET). The key is N
    alone: every batch size takes the same permutations (the curves over B share their sampling error)."""
    sizes = epoch_batches(model.n, batch_size, drop_last)
    return sizes, (model.n,), chunks_for(model, sizes, momentum, cov)
