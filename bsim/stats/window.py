"""Host-side averages over steps: the measured ball and the variance per batch size.

The simulation hands per-step values over in chunks at frame time; these
classes fold them into float64 sums. The measured ball is the root mean
square of |theta_t - center| over a window that restarts whenever the batch
size, lr, momentum or sampling changes, after a burn-in of a stated number of
steps. Its standard error comes from batch means over blocks of ``block``
steps (several relaxation times, so the blocks are nearly independent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: blocks needed before the batch means give a standard error (fewer: "settling")
MIN_BLOCKS = 8


class BallWindow:
    def __init__(self, start_step: int, burn_in: int, block: int):
        self.start_step, self.burn_in, self.block = start_step, burn_in, max(1, block)
        self.count = 0
        self.total = 0.0
        self._block_sum, self._block_n = 0.0, 0
        self.block_means: list[float] = []

    @property
    def first_counted(self) -> int:
        """The first step (1-based step count) that enters the window."""
        return self.start_step + self.burn_in

    def add(self, steps: np.ndarray, d2: np.ndarray) -> None:
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run: the mean becomes inf
            self._add(steps, d2)

    def _add(self, steps: np.ndarray, d2: np.ndarray) -> None:
        keep = steps >= self.first_counted
        vals = d2[keep]
        if len(vals) == 0:
            return
        self.count += len(vals)
        self.total += float(vals.sum())
        i = 0
        while i < len(vals):
            take = min(self.block - self._block_n, len(vals) - i)
            self._block_sum += float(vals[i:i + take].sum())
            self._block_n += take
            i += take
            if self._block_n == self.block:
                self.block_means.append(self._block_sum / self.block)
                self._block_sum, self._block_n = 0.0, 0

    def burn_in_left(self, step: int) -> int:
        return max(0, self.first_counted - 1 - step)

    @property
    def mean_square(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def radius(self) -> float | None:
        ms = self.mean_square
        return None if ms is None or ms < 0 else math.sqrt(ms)

    @property
    def radius_se(self) -> float | None:
        """Standard error of the radius from batch means (None with fewer than MIN_BLOCKS blocks)."""
        if len(self.block_means) < MIN_BLOCKS or not self.radius:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            se_ms = float(np.std(self.block_means, ddof=1)) / math.sqrt(len(self.block_means))
        return se_ms / (2.0 * self.radius) if math.isfinite(se_ms) else None


@dataclass
class _Acc:
    n: int = 0
    s: float = 0.0
    s2: float = 0.0
    theory: float = 0.0


class VarianceByBatchSize:
    """Mean of grad_noise = |g_B - G|^2 and of its prediction, per (sampling, batch size)."""

    def __init__(self):
        self._acc: dict[tuple[str, int], _Acc] = {}

    def add(self, sampling: str, batch_sizes: np.ndarray, noise: np.ndarray, theory: np.ndarray) -> None:
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run: the averages become inf
            self._add(sampling, batch_sizes, noise, theory)

    def _add(self, sampling, batch_sizes, noise, theory) -> None:
        for b in np.unique(batch_sizes):
            m = batch_sizes == b
            a = self._acc.setdefault((sampling, int(b)), _Acc())
            v = noise[m]
            a.n += int(m.sum())
            a.s += float(v.sum())
            a.s2 += float((v * v).sum())
            a.theory += float(theory[m].sum())

    def points(self, sampling: str) -> list[tuple[int, int, float, float | None, float]]:
        """(B, steps, mean grad_noise, its standard error, mean prediction) for one sampling, by B."""
        out = []
        for (s, b), a in sorted(self._acc.items(), key=lambda kv: kv[0][1]):
            if s != sampling or a.n == 0:
                continue
            mean = a.s / a.n
            se = math.sqrt(max(a.s2 / a.n - mean * mean, 0.0) / (a.n - 1)) if a.n > 1 else None
            out.append((b, a.n, mean, se, a.theory / a.n))
        return out
