"""Where linear scaling breaks: the best lr at each batch size, its slope, and McCandlish et al.'s law.

Under ``tuned`` the best lr of a batch size is the lr whose seeds reach the target most often, then in
the fewest mean steps (the lr the sweep keeps, bsim.sweep.analysis.kept_lrs), except that lrs tied on
those steps count as one at their geometric mean (the kept lr is the smallest of them: the step count
is often flat over a range of lrs, and its lowest end would bias the slope). On log-log axes it rises
with slope 1 at small B (the linear scaling rule, Goyal et al. 2017: noise, not curvature, limits the
step) and flattens near B_crit, where the largest stable lr takes over. The slope is the least-squares
slope of ln lr on ln B over B <= B_crit/4 and over B >= 4 B_crit (the plots' regimes).

McCandlish et al. (2018, eq. 2.6): lr_opt(B) = lr_max / (1 + B_noise/B). With B_noise the measured
noise scale, lr_max is fitted by least squares on ln lr, in closed form:
ln lr_max = mean_B (ln lr_B + ln(1 + B_noise/B)); the error is the rms residual of ln lr (a factor
exp(rms)). The same law with the knee free (B_* for B_noise, a search over ln B_*) says where the data
put the knee, to set beside the measured B_noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REGIME = 4.0          # B <= B_crit / REGIME: perfect scaling; B >= REGIME B_crit: maximal data parallelism
KNEE_SEARCH = 2000    # points of the search for the free knee, log-spaced over 100x beyond the batch sizes


@dataclass
class LawFit:
    """lr_opt(B) = lr_max / (1 + knee/B) fitted to the best lrs; rms: of ln lr."""
    knee: float
    lr_max: float
    rms: float

    def at(self, b) -> np.ndarray:
        return self.lr_max / (1.0 + self.knee / np.asarray(b, dtype=float))


@dataclass
class BestLr:
    points: list[tuple[int, float]]          # (B, best lr), the batch sizes where some lr reached the target
    slope_small: float | None                # over B <= B_crit / 4
    small: list[int]
    slope_large: float | None                # over B >= 4 B_crit
    large: list[int]
    measured: LawFit | None                  # B_noise the measured noise scale
    free: LawFit | None                      # the knee that fits best

    def lines(self, b_noise_name: str = "B_noise") -> list[str]:
        def over(s, bs, where):
            if s is None:
                return f"none over {where} (fewer than 2 batch sizes there)"
            return f"{s:.2f} over {where} (B = {bs[0]}..{bs[-1]})"
        out = [f"best lr per B (the lr with the fewest steps to the target; tied lrs: their geometric mean): slope of ln lr against ln B "
               f"{over(self.slope_small, self.small, 'B <= B_crit/4')} (linear scaling: 1), "
               f"{over(self.slope_large, self.large, 'B >= 4 B_crit')}"]
        law = "McCandlish et al. lr_opt(B) = lr_max/(1 + B_noise/B)"
        if self.measured is not None:
            m = self.measured
            out.append(f"  {law}, {b_noise_name} = {m.knee:.3g} (measured): fitted lr_max = {m.lr_max:.3g}, "
                       f"rms error of ln lr {m.rms:.2f} (a factor {math.exp(m.rms):.2f})")
        if self.free is not None:
            f = self.free
            out.append(f"  the knee that fits best: B_noise = {f.knee:.3g} (lr_max = {f.lr_max:.3g}, rms error of "
                       f"ln lr {f.rms:.2f}, a factor {math.exp(f.rms):.2f})")
        return out


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ln lr on ln B; None with fewer than 2 distinct batch sizes."""
    if len({b for b, _ in points}) < 2:
        return None
    x = np.log([b for b, _ in points])
    y = np.log([lr for _, lr in points])
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def fit_law(points: list[tuple[float, float]], knee: float) -> LawFit:
    """lr_max of lr_opt(B) = lr_max/(1 + knee/B) by least squares on ln lr (closed form), and its rms error."""
    b = np.array([p[0] for p in points], dtype=float)
    y = np.log([p[1] for p in points])
    shape = -np.log1p(knee / b)
    ln_max = float((y - shape).mean())
    rms = float(np.sqrt(((y - shape - ln_max) ** 2).mean()))
    return LawFit(float(knee), math.exp(ln_max), rms)


def best_knee(points: list[tuple[float, float]]) -> LawFit:
    """The knee (and lr_max) with the least rms error of ln lr, searched log-spaced over 100x beyond the B's."""
    bs = [p[0] for p in points]
    knees = np.geomspace(min(bs) / 100, max(bs) * 100, KNEE_SEARCH)
    return min((fit_law(points, k) for k in knees), key=lambda f: f.rms)


def best_lrs(rows: list[dict]) -> list[tuple[int, float]]:
    """(B, best lr) per batch size: among the lrs whose seeds reach the target most often (at least once),
    the one with the fewest mean steps; lrs tied on those steps (a step count flat over a range of lrs)
    count as one, their geometric mean."""
    by: dict[int, dict[float, list[dict]]] = {}
    for r in rows:
        by.setdefault(r["batch_size"], {}).setdefault(r["lr"], []).append(r)
    out = []
    for b in sorted(by):
        scored = []
        for lr, rs in by[b].items():
            steps = [r["steps"] for r in rs if r["reached"]]
            if steps:
                scored.append((-len(steps) / len(rs), sum(steps) / len(steps), lr))
        if not scored:
            continue
        best = min(scored)
        tied = [lr for f, s, lr in scored if f == best[0] and math.isclose(s, best[1], rel_tol=1e-12)]
        out.append((b, math.exp(sum(math.log(lr) for lr in tied) / len(tied))))
    return out


def best_lr(rows: list[dict], b_crit: float | None, b_noise: float | None) -> BestLr | None:
    """The best lr per batch size and its laws, from a tuned sweep's rows (every lr of the grid).

    None with fewer than 3 batch sizes at the target."""
    points = best_lrs(rows)
    if len(points) < 3:
        return None
    ok = b_crit is not None and math.isfinite(b_crit)
    small = [p for p in points if ok and p[0] <= b_crit / REGIME]
    large = [p for p in points if ok and p[0] >= b_crit * REGIME]
    measured = fit_law(points, b_noise) if b_noise is not None and math.isfinite(b_noise) and b_noise > 0 else None
    return BestLr(points, slope(small), [b for b, _ in small], slope(large), [b for b, _ in large],
                  measured, best_knee(points))
