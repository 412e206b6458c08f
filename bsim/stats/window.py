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
    theory: float = 0.0
    block_sum: float = 0.0        # the residual grad_noise - theory over the block being filled
    block_n: int = 0
    blocks: int = 0               # full blocks: their count, the sum of their means and of its square
    block_s: float = 0.0
    block_s2: float = 0.0


class VarianceByBatchSize:
    """Mean of grad_noise = |g_B - G|^2 and of its prediction c_B tr(Sigma), per (sampling, batch size),
    with the standard error of the measured mean against the prediction.

    The residual r_t = grad_noise_t - c_B tr(Sigma)(theta_t) has mean 0 given theta_t (the prediction is
    exact at theta_t for linear models). With iid or replacement sampling the step's batch is drawn
    independently of everything before it, so the r_t are martingale differences: uncorrelated even though
    theta_t (and with it grad_noise) drifts, and SE = sd(r) / sqrt(n). Under shuffle the batches of one
    epoch are drawn without replacement from one permutation and their residuals are correlated (at N/B = 2
    the two batches' noises are equal), so the residuals are averaged over blocks of one epoch (ceil(N / B)
    steps) and SE = sd(block means) / sqrt(blocks) (blocks are counted from the first step at B, not from
    an epoch's start: two neighbouring blocks may share an epoch, which makes the SE a little low when an
    epoch has only a few batches). Where grad_noise is taken every ``every`` steps (the LSTM) a block holds
    the values of one epoch's steps, at least one. The SE is None ("settling") below MIN_BLOCKS blocks. The ratio of the
    means has SE / (mean prediction): the prediction is treated as exact (for the LSTM it is the two-batch
    estimate, whose noise is in the residuals too).
    """

    def __init__(self, n_train: int = 0):
        self.n_train = n_train
        self._acc: dict[tuple[str, int], _Acc] = {}

    def block_steps(self, sampling: str, batch_size: int, every: int = 1) -> int:
        """Values per block of the standard error: one epoch's under shuffle, one otherwise."""
        if sampling == "shuffle" and self.n_train > batch_size:
            return max(1, -(-self.n_train // (batch_size * every)))
        return 1

    def add(self, sampling: str, batch_sizes: np.ndarray, noise: np.ndarray, theory: np.ndarray,
            every: int = 1) -> None:
        """Fold in grad_noise and its prediction at steps taken with ``batch_sizes``, one every ``every`` steps."""
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run: the averages become inf
            self._add(sampling, batch_sizes, noise, theory, every)

    def _add(self, sampling, batch_sizes, noise, theory, every) -> None:
        for b in np.unique(batch_sizes):
            m = batch_sizes == b
            a = self._acc.setdefault((sampling, int(b)), _Acc())
            v, t = noise[m], theory[m]
            a.n += int(m.sum())
            a.s += float(v.sum())
            a.theory += float(t.sum())
            self._fold_blocks(a, np.asarray(v - t, dtype=float), self.block_steps(sampling, int(b), every))

    @staticmethod
    def _fold_blocks(a: _Acc, residual: np.ndarray, block: int) -> None:
        """Fill the block under way, then whole blocks at once, and keep the rest for the next block."""
        take = min(block - a.block_n, len(residual))
        a.block_sum += float(residual[:take].sum())
        a.block_n += take
        rest = residual[take:]
        if a.block_n < block:
            return
        whole = len(rest) // block
        means = np.concatenate([[a.block_sum / block], rest[:whole * block].reshape(whole, block).mean(axis=1)])
        a.blocks += len(means)
        a.block_s += float(means.sum())
        a.block_s2 += float((means * means).sum())
        tail = rest[whole * block:]
        a.block_sum, a.block_n = float(tail.sum()), len(tail)

    @staticmethod
    def _se(a: _Acc) -> float | None:
        """sd(block means of the residual) / sqrt(blocks); None below MIN_BLOCKS blocks or when not finite."""
        if a.blocks < MIN_BLOCKS:
            return None
        mean = a.block_s / a.blocks
        se = math.sqrt(max(a.block_s2 / a.blocks - mean * mean, 0.0) / (a.blocks - 1))
        return se if math.isfinite(se) else None

    def points(self, sampling: str) -> list[tuple[int, int, float, float | None, float]]:
        """(B, steps, mean grad_noise, its standard error against the prediction, mean prediction) for one
        sampling, by B."""
        out = []
        for (s, b), a in sorted(self._acc.items(), key=lambda kv: kv[0][1]):
            if s != sampling or a.n == 0:
                continue
            out.append((b, a.n, a.s / a.n, self._se(a), a.theory / a.n))
        return out
