"""The stability limit of shuffled epochs: the largest lr with rho(E[M kron M]) < 1, over sampled permutations.

E[M kron M] (``epoch_moments``) is the map of the epoch-start second moment
S -> E[M S M^T]; the stationary ball exists exactly while its spectral radius
is below 1 (``epoch_stationary``). The limit is a root search on ln rho(lr),
on the first LIMIT_CHUNKS chunks of permutations (the prediction's first),
with the jackknife SE of rho carried to lr through the slope there. The iid
limit is a different operator's and is the search's starting guess.

Cost: one map per lr tried (about 10 per search, the positions' sums skipped).
"""

from __future__ import annotations

import math

import numpy as np

from bsim.stats.epoch_map import EpochModel, setting
from bsim.stats.epoch_moments import accumulate
from bsim.stats.epoch_stationary import perron, rho_jackknife

#: chunks the stability limit is searched on (the first of the prediction's)
LIMIT_CHUNKS = 1


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


def limit(model: EpochModel, batch_size: int, momentum: float, drop_last: bool,
          start: float) -> tuple[float, float] | None:
    """(the shuffled stability limit, its SE) on the first LIMIT_CHUNKS chunks; None over BUDGET."""
    sizes, key, most = setting(model, batch_size, momentum, drop_last, False)
    if most < 1:
        return None
    return shuffle_limit(model, momentum, sizes, key, min(most, LIMIT_CHUNKS), start)
