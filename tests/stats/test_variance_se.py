"""The standard error of the measured grad_noise mean (the variance panel's ×ratio ± se) against the spread
of that mean over independent seeds: the spread over 16 seeds is the reference, the code's se its estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.window import MIN_BLOCKS, VarianceByBatchSize

SEEDS = 16


@pytest.mark.parametrize(("sampling", "batch_size"), [("iid", 8), ("shuffle", 512)])
def test_the_ratios_standard_error_matches_the_spread_over_independent_seeds(sampling, batch_size):
    """default (N = 1024), 600 steps from the start (theta drifts: the se must hold all the same). iid: the
    residuals are martingale differences; shuffle at B = 512: 2 batches an epoch with equal noise, one-epoch blocks
    (measured: se / spread 0.90 iid, 0.89 shuffle; 0.63 for shuffle without blocks). The sd over 16 seeds has a
    relative standard error of about 1 / sqrt(30) = 18%: the mean se must be within 0.6-1.6x of it."""
    ratios, ses = [], []
    for seed in range(SEEDS):
        sim = Simulation(apply_overrides(find_scenario("default"), sampling=sampling, batch_size=batch_size,
                                         seed=seed))
        sim.run(600)
        p = next(p for p in sim.frame().stats.variance_measured if p.batch_size == batch_size)
        ratios.append(p.grad_noise_mean / p.theory_mean)
        ses.append(p.grad_noise_se / p.theory_mean)
    spread, se = float(np.std(ratios, ddof=1)), float(np.mean(ses))
    assert 0.6 < se / spread < 1.6, (se, spread)
    assert abs(np.mean(ratios) - 1) < 3 * spread / math.sqrt(SEEDS)          # the prediction holds on average


def test_the_standard_error_settles_after_min_blocks_of_one_epoch_under_shuffle():
    """Shuffle at B = 128 of N = 1024: blocks of 8 steps; no se before MIN_BLOCKS blocks, then the block means'."""
    acc = VarianceByBatchSize(1024)
    rng = np.random.default_rng(3)
    residual = rng.normal(size=8 * MIN_BLOCKS)
    acc.add("shuffle", np.full(8 * MIN_BLOCKS - 1, 128), residual[:-1] + 2.0, np.full(8 * MIN_BLOCKS - 1, 2.0))
    assert acc.points("shuffle")[0][3] is None                                 # 7 whole blocks: settling
    acc.add("shuffle", np.array([128]), residual[-1:] + 2.0, np.array([2.0]))
    means = residual.reshape(MIN_BLOCKS, 8).mean(axis=1)
    assert acc.points("shuffle")[0][3] == pytest.approx(np.std(means, ddof=1) / math.sqrt(MIN_BLOCKS))
