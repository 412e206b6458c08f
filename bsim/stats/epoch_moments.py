"""The sums over sampled permutations that the stationary moments of shuffled epochs need.

Per group of permutations (GROUPS groups, for the jackknife): S -> sum M S M^T
in the svec coordinates of ``lyapunov``, M, b, M_ik b_j, b b^T, W and Z of the
epoch maps (``epoch_map``), accumulated chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bsim.stats import lyapunov
from bsim.stats.epoch_map import CHUNK, EpochModel, chunk, epoch_maps

#: groups of permutations for the jackknife standard error
GROUPS = 16
#: permutation entries (N per permutation) one pass over an epoch holds at most (int32: 80 MB)
BLOCK_INTS = 2e7


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


def accumulate(model: EpochModel, lr: float, momentum: float, sizes: np.ndarray, key: tuple, chunks: range,
               groups: Moments | None = None, positions: bool = True, cov: bool = False,
               additive: bool = False) -> Moments:
    """The GROUPS groups' moments over ``chunks`` (one pass per block of at most BLOCK_INTS permutation
    entries), added to ``groups``; ``additive``: the additive-noise model's (``epoch_maps``)."""
    out = groups
    per_block = max(1, int(BLOCK_INTS // (CHUNK * model.n)))
    todo = list(chunks)
    for start in range(0, len(todo), per_block):
        perms = np.concatenate([chunk(model.n, key, j) for j in todo[start:start + per_block]])
        M, b, W, Z = epoch_maps(model, lr, momentum, sizes, perms, positions, cov, additive)
        if W is None:
            W = np.zeros((M.shape[0], 1, 1))
        part = Moments.of(M, b, W, Z)
        out = part if out is None else out.plus(part)
    return out
