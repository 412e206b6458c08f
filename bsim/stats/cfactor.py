"""The finite-population factor c_B and what follows from it.

At fixed parameters the batch gradient g_B scatters around the full gradient G
with E|g_B - G|^2 = c_B tr(Sigma), where Sigma = (1/N) sum_i (g_i - G)(g_i - G)^T and

    c_B = (N - B) / (B (N - 1))   for B distinct examples (shuffle and iid),
    c_B = 1 / B                   for B examples drawn with replacement.

c_B = 0 at B = N without replacement: the batch is the whole training set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def c_factor(n: int, batch_size: int, sampling: str) -> float:
    """c_B for a batch of ``batch_size`` out of ``n`` under ``sampling`` (shuffle | iid | replacement)."""
    if batch_size < 1 or n < 1:
        raise ValueError(f"batch size {batch_size} and N = {n}: expected both >= 1")
    if sampling == "replacement":
        return 1.0 / batch_size
    if sampling not in ("shuffle", "iid"):
        raise ValueError(f"unknown sampling {sampling!r}")
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} above N = {n} without replacement")
    if n == 1:
        return 0.0
    return (n - batch_size) / (batch_size * (n - 1))


def temperature(lr: float, n: int, batch_size: int, momentum: float = 0.0, sampling: str = "shuffle") -> float:
    """The SGD temperature (Smith & Le 2017) of the sampling in force (``TEMPERATURE_FORMULA``).

    B distinct examples (shuffle, iid): lr (N/B - 1) / (1 - momentum) = lr c_B (N - 1) / (1 - momentum),
    zero at B = N (lr N / B is its large-N approximation); with replacement (c_B = 1/B):
    lr N / (B (1 - momentum)) = lr c_B N / (1 - momentum).
    """
    if sampling == "replacement":
        return lr * n / (batch_size * (1.0 - momentum))
    return lr * (n / batch_size - 1.0) / (1.0 - momentum)


#: the temperature's formula as the screen and the help show it, per sampling mode
TEMPERATURE_FORMULA = {"shuffle": "lr(N/B-1)/(1-m)", "iid": "lr(N/B-1)/(1-m)", "replacement": "lr N/(B(1-m))"}


def theory_batch_sizes(n: int, points: int = 96) -> list[int]:
    """About ``points`` batch sizes log-spaced from 1 to n (distinct integers): where the theory line is drawn."""
    return [int(b) for b in np.unique(np.round(np.logspace(0, math.log10(n), points)).astype(int))]


@dataclass(frozen=True)
class VarianceTheory:
    """B -> c_B tr(Sigma): the predicted E|g_B - G|^2 at the current parameters.

    Call it with a batch size (or use ``points``) to draw the theory line of the
    variance-across-batches plot; ``trace_sigma`` is tr(Sigma) at the parameters
    it was made from.
    """

    trace_sigma: float
    n_train: int
    sampling: str

    def __call__(self, batch_size: int) -> float:
        return c_factor(self.n_train, batch_size, self.sampling) * self.trace_sigma

    def points(self, batch_sizes) -> list[tuple[int, float]]:
        """(B, c_B tr(Sigma)) for each B in ``batch_sizes`` that is valid for this sampling."""
        out = []
        for b in batch_sizes:
            if 1 <= b and (self.sampling == "replacement" or b <= self.n_train):
                out.append((int(b), self(int(b))))
        return out
