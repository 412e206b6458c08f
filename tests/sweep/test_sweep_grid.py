"""The B_crit interval of a tuned sweep covers the lr grid's spacing, not only the seeds."""

import numpy as np

from bsim.sweep.analysis import grid_drops, kept_lrs, summarize
from bsim.sweep.fit import bootstrap_b_crit, fit_tradeoff

S_MIN, E_MIN = 50.0, 1600.0          # the model's B_crit = E_min / S_min = 32
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
COARSE_GRID = [0.01 * 4.0 ** k for k in range(5)]       # lr x4 per grid step


def best_lr(b):
    """The model's best lr: on the grid for B = 1, 4, 16; halfway in log between grid points for B >= 32."""
    return 0.32 if b >= 32 else 0.01 * b


def model_steps(b, lr):
    """Steps to the target: (S_min + E_min/B) at the best lr, times (x + 1/x)/2 at x = lr / best lr."""
    x = lr / best_lr(b)
    return (S_MIN + E_MIN / b) * (x + 1 / x) / 2


def row(b, seed, lr, steps):
    return dict(batch_size=b, seed=seed, lr=lr, reached=True, diverged=False, steps=steps, samples=steps * b,
                b_simple=None, b_noise=None, target_loss=0.1)


def tuned_rows(noise=0.01, seeds=3):
    rng = np.random.default_rng(0)
    return [row(b, s, lr, model_steps(b, lr) * (1 + noise * rng.standard_normal()))
            for b in BATCH_SIZES for lr in COARSE_GRID for s in range(seeds)]


def test_a_coarse_grid_widens_the_interval_to_the_b_crit_of_the_best_lrs():
    # the reference: the model's steps at each batch size's best lr (independent of the grid) fit B_crit = 32
    exact = fit_tradeoff([S_MIN + E_MIN / b for b in BATCH_SIZES], [S_MIN * b + E_MIN for b in BATCH_SIZES],
                         BATCH_SIZES)
    assert abs(exact.b_crit - 32.0) < 1e-6
    rows = tuned_rows()
    summary = summarize(rows)
    # the grid's best lr is up to a factor 2 from the best lr at B >= 32: S there is 25% high, B_crit low
    assert summary.fit.ok and summary.fit.b_crit < 28
    groups = {pb.batch_size: list(zip(pb.steps, pb.samples)) for pb in summary.per_b}
    seeds_only = bootstrap_b_crit(groups)
    assert not seeds_only.lo <= 32.0 <= seeds_only.hi            # the seeds agree within 1%: far too narrow
    spread = summary.spread
    assert spread.grid and spread.lo <= summary.fit.b_crit and spread.lo <= 32.0 <= spread.hi
    text = "\n".join(summary.lines())
    assert "68% bootstrap interval over seeds and the lr grid's spacing" in text


def test_the_grid_term_is_the_v_through_the_three_grid_points_and_absent_without_a_grid():
    rows = tuned_rows(noise=0.0, seeds=1)
    drops = grid_drops(rows, kept_lrs(rows))
    # B = 64: kept lr 0.16 (x = 1/2, S x1.25), neighbours 0.04 (x = 1/8) and 0.64 (x = 2, S x1.25):
    # left slope ln(4.0625/1.25)/ln 4, right slope 0: the V's vertex is half a step right, lower by
    # ln 4 * slope / 2
    slope = np.log(((8 + 1 / 8) / 2) / 1.25) / np.log(4)
    assert abs(drops[64] - np.log(4) * slope / 2) < 1e-9
    # B = 4: the best lr is on the grid: the steps rise alike on both sides, no room below
    assert drops[4] < 1e-9
    one_lr = [r for r in rows if r["lr"] == 0.16]
    assert grid_drops(one_lr, kept_lrs(one_lr)) == {}
