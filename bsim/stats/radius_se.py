"""A measured ball radius with its standard error (``RadiusMeasure``), for the trail and for the ensemble.

Both measure a mean square m = mean |theta - centre|^2 and report sqrt(m); by
the delta method SE(sqrt m) = SE(m) / (2 sqrt m).

- The trail (the run's own iterates after the burn-in, ``window.BallWindow``):
  SE(m) from the batch means of blocks of several relaxation times (nearly
  independent); ``samples`` is the number of relaxation times in the window.
  Settling (se None) until ``window.MIN_BLOCKS`` blocks are in.
- The ensemble (``bsim.ensemble.epoch_window``): the chains are independent,
  so SE(m) = sd_k(m_k) / sqrt(K) over the chains' own means m_k over the
  counted epochs; ``samples`` = K. Settling until at least ``MIN_CHAINS``
  chains and ``min_steps`` steps (a whole epoch window) are in.
"""

from __future__ import annotations

import math

import numpy as np

from bsim.stats.info import RadiusMeasure
from bsim.stats.window import BallWindow

#: fewest chains whose spread gives a standard error
MIN_CHAINS = 8


def trail_measure(window: BallWindow | None, relaxation_steps: float) -> RadiusMeasure | None:
    """The trail's radius over the window after burn-in (None before a step is counted)."""
    if window is None or window.radius is None:
        return None
    return RadiusMeasure(radius=window.radius, se=window.radius_se,
                         samples=window.count / max(relaxation_steps, 1.0))


def chains_measure(per_chain: np.ndarray, steps: int, min_steps: int) -> RadiusMeasure | None:
    """sqrt(mean_k m_k) and SE = sd_k(m_k) / (sqrt(K) 2 radius), from each chain's mean square m_k."""
    k = len(per_chain)
    if k == 0 or steps == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        ms = float(np.mean(per_chain))
        sd = float(np.std(per_chain, ddof=1)) if k > 1 else math.inf
    if not math.isfinite(ms) or ms <= 0:
        return None
    radius = math.sqrt(ms)
    settled = k >= MIN_CHAINS and steps >= min_steps and math.isfinite(sd)
    return RadiusMeasure(radius=radius, se=sd / math.sqrt(k) / (2.0 * radius) if settled else None, samples=float(k))
