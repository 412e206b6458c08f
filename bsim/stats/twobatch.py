"""The two-batch-size estimator of tr(Sigma) and |G|^2 (McCandlish et al. 2018, app. A).

With the batch gradient of a small batch s and of a big batch b at the same
parameters, E|g_B|^2 = |G|^2 + c_B tr(Sigma) gives the unbiased estimates

    tr(Sigma) = (|g_s|^2 - |g_b|^2) / (c_s - c_b)
    |G|^2     = (c_s |g_b|^2 - c_b |g_s|^2) / (c_s - c_b)

No per-example gradients are needed. Over many steps the numerators and the
denominators are averaged separately before the ratio (the denominators are
known constants, so the averages stay unbiased), and the noise scale is the
ratio of the averaged tr(Sigma) to the averaged |G|^2.
"""

from __future__ import annotations

import math

import numpy as np


def half_batch_grad(problem, theta, idx):
    """The small batch of a step: the gradient over the first B // 2 of its B examples (B >= 2).

    The first half of a uniformly drawn batch is itself a uniformly drawn batch
    of B // 2 (distinct, or with replacement, as the batch was).
    """
    return problem.loss_and_grad(theta, idx[: idx.shape[0] // 2])[1]


def two_batch(norm2_small, norm2_big, c_small: float, c_big: float):
    """(tr(Sigma), |G|^2) from one pair of squared batch-gradient norms (numbers or arrays)."""
    den = c_small - c_big
    return (norm2_small - norm2_big) / den, (c_small * norm2_big - c_big * norm2_small) / den


class TwoBatchAverage:
    """Exponential averages (horizon ``horizon`` steps) of the numerators and the denominator.

    ``update`` takes arrays over steps; the estimates are ratios of the
    averaged numerators to the averaged denominator.
    """

    def __init__(self, horizon: float = 500.0):
        self.beta = 1.0 - 1.0 / horizon
        self.num_trace = self.num_g2 = self.den = 0.0
        self.steps = 0

    def update(self, n_small: np.ndarray, n_big: np.ndarray, c_small: np.ndarray, c_big: np.ndarray) -> None:
        k = len(n_small)
        if k == 0:
            return
        w = self.beta ** np.arange(k - 1, -1, -1, dtype=np.float64)   # newest weighs 1
        decay = self.beta ** k
        self.num_trace = decay * self.num_trace + float(np.dot(w, n_small - n_big))
        self.num_g2 = decay * self.num_g2 + float(np.dot(w, c_small * n_big - c_big * n_small))
        self.den = decay * self.den + float(np.dot(w, c_small - c_big))
        self.steps += k

    @property
    def trace_sigma(self) -> float | None:
        return self.num_trace / self.den if self.den > 0 else None

    @property
    def grad_norm2(self) -> float | None:
        return self.num_g2 / self.den if self.den > 0 else None

    @property
    def noise_scale(self) -> float | None:
        t, g = self.trace_sigma, self.grad_norm2
        if t is None or g is None or not g > 0 or not math.isfinite(t):
            return None
        return t / g
