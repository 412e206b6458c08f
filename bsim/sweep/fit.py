"""The steps-examples trade-off (McCandlish et al. 2018) fitted to a sweep.

(S/S_min - 1)(E/E_min - 1) = 1 is the same curve as S_min/S + E_min/E = 1,
which is LINEAR in (S_min, E_min). With E = B S it reads S = S_min + E_min/B:
steps fall as 1/B (perfect scaling) until B ~ B_crit = E_min/S_min and then
flatten at S_min (maximal data parallelism). The fit is least squares on
r_i = 1 - S_min/S_i - E_min/E_i, which is the RELATIVE error of the predicted
steps, (S_i - S_pred(B_i))/S_i, so every batch size weighs alike.

The spread comes from a bootstrap over seeds: each replicate draws, for every
batch size, as many of its seeds' points as it has, with replacement, and
refits; the interval is the 16th-84th percentile (a 68% interval) of B_crit.

Under a tuned lr the grid adds its own uncertainty: the best lr of a batch
size lies between grid points, where the steps may be lower than at the
grid's best lr. ``grid_drop`` (analysis.py) bounds that by a V through the
three grid points around the kept lr; each replicate then also refits with the
steps and examples of every batch size scaled by exp(-u drop_B), u uniform
in [0, 1], drawn independently per batch size and replicate. The interval
is the union of that 68% interval (seeds and grid together) and the seeds'
own: the grid can only lower S, so it widens the interval on one side and
the point estimate (at the kept lrs) stays inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 1000
MIN_BATCH_SIZES = 3
KNEE_MARGIN = 2.0     # B_crit may lie this factor outside the measured batch sizes
ROUGH = 0.3           # rms relative error above which the fit is flagged as rough


@dataclass
class Fit:
    ok: bool
    reason: str = ""                 # why there is no fit (plain words), or a caution
    s_min: float = float("nan")
    e_min: float = float("nan")
    rms_rel: float = float("nan")    # rms relative error of the fitted steps

    @property
    def b_crit(self) -> float:
        return self.e_min / self.s_min if self.ok else float("nan")

    def steps_at(self, b) -> np.ndarray:
        """S(B) = S_min + E_min / B."""
        return self.s_min + self.e_min / np.asarray(b, dtype=float)

    def examples_at(self, b) -> np.ndarray:
        """E(B) = E_min + S_min B."""
        return self.e_min + self.s_min * np.asarray(b, dtype=float)


def fit_tradeoff(steps, examples, batch_sizes=None) -> Fit:
    """Fit S_min, E_min to measured (S, E) points; says why when the data cannot support a fit.

    ``batch_sizes`` (default E/S) only counts the distinct batch sizes.
    """
    S = np.asarray(steps, dtype=float)
    E = np.asarray(examples, dtype=float)
    B = E / np.where(S > 0, S, 1) if batch_sizes is None else np.asarray(batch_sizes, dtype=float)
    keep = np.isfinite(S) & np.isfinite(E) & (S > 0) & (E > 0)
    S, E, B = S[keep], E[keep], B[keep]
    n_b = len(np.unique(B))
    if n_b < MIN_BATCH_SIZES:
        return Fit(False, f"cannot fit: {n_b} batch size(s) reached the target; the fit needs at least "
                          f"{MIN_BATCH_SIZES} to find the knee")
    A = np.column_stack([1.0 / S, 1.0 / E])
    (s_min, e_min), *_ = np.linalg.lstsq(A, np.ones(len(S)), rcond=None)
    rms = float(np.sqrt(np.mean((1.0 - A @ np.array([s_min, e_min])) ** 2)))
    if not (np.isfinite(s_min) and np.isfinite(e_min)):
        return Fit(False, "cannot fit: the points are degenerate")
    lo, hi = B.min(), B.max()
    if e_min <= 0 or e_min < s_min * lo / KNEE_MARGIN:
        return Fit(False, f"cannot fit: the steps hardly fall with B, so every batch size is past the knee "
                          f"(B_crit below {lo / KNEE_MARGIN:g}); try smaller batch sizes or a lower target",
                   s_min, e_min, rms)
    if s_min <= 0 or e_min > s_min * hi * KNEE_MARGIN:
        return Fit(False, f"cannot fit: the steps fall as 1/B all the way, so the knee is beyond the largest "
                          f"batch size (B_crit above {hi * KNEE_MARGIN:g}); try larger batch sizes",
                   s_min, e_min, rms)
    bc = e_min / s_min
    fit = Fit(True, "", float(s_min), float(e_min), rms)
    if not lo <= bc <= hi:
        fit.reason = f"B_crit = {bc:.3g} lies just outside the batch sizes measured ({lo:g}..{hi:g})"
    elif rms > ROUGH:
        fit.reason = f"the points scatter by {100 * rms:.0f}% (rms) around the curve"
    return fit


@dataclass
class Spread:
    lo: float
    hi: float
    n_ok: int            # replicates that gave a fit
    n: int
    grid: bool = False   # the lr grid's spacing is in the interval (tuned)


def bootstrap_b_crit(groups: dict[int, list[tuple[float, float]]], n: int = BOOTSTRAP,
                     seed: int = 0, grid_drop: dict[int, float] | None = None) -> Spread | None:
    """68% interval of B_crit over seed resamples; groups: batch size -> [(S, E), ...], one per seed.

    ``grid_drop`` (tuned lr): batch size -> the most by which ln S may fall between the lr grid's points;
    each replicate scales that batch size's S and E by exp(-u drop), u ~ U(0, 1) (module docstring).
    None when there is nothing to resample: no batch size with two seeds and no grid term.
    """
    drops = {b: d for b, d in (grid_drop or {}).items() if d > 0 and groups.get(b)}
    if not any(len(v) > 1 for v in groups.values()) and not drops:
        return None
    rng = np.random.default_rng(seed)
    grid_rng = np.random.default_rng([seed, 1])       # its own stream: the seed resamples stay as they were
    sizes = [b for b, v in groups.items() if v]
    arrays = [np.column_stack([np.asarray(groups[b], dtype=float), np.full(len(groups[b]), float(b))])
              for b in sizes]
    drop = np.array([drops.get(b, 0.0) for b in sizes])
    seeds_only, with_grid = [], []
    for _ in range(n):
        picks = [a[rng.integers(0, len(a), len(a))] for a in arrays]
        f = _fit_points(picks)
        if f.ok:
            seeds_only.append(f.b_crit)
        if drops:
            scale = np.exp(-grid_rng.random(len(sizes)) * drop)
            f = _fit_points([p * np.array([k, k, 1.0]) for p, k in zip(picks, scale)])
            if f.ok:
                with_grid.append(f.b_crit)
    out = with_grid if drops else seeds_only
    if not out:
        return Spread(float("nan"), float("nan"), 0, n, bool(drops))
    lo, hi = np.percentile(out, [16, 84])
    if drops and seeds_only:        # the union with the seeds' interval at the kept lrs (the grid only lowers S)
        s_lo, s_hi = np.percentile(seeds_only, [16, 84])
        lo, hi = min(lo, s_lo), max(hi, s_hi)
    return Spread(float(lo), float(hi), len(out), n, bool(drops))


def _fit_points(groups: list[np.ndarray]) -> Fit:
    pts = np.concatenate(groups)
    return fit_tradeoff(pts[:, 0], pts[:, 1], pts[:, 2])
