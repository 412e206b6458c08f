"""Landscapes: small non-convex problems (1 or 2 parameters) built from per-example losses.

Every landscape is a full loss L(theta) = (1/N) sum_i l_i(theta) with two basins, so that the
only noise is which examples land in the batch (nothing is injected). The subclasses
(``wells``: tilted double wells, Kramers; ``nonuniform``: minima of equal sharpness and
different non-uniformity, Wu, Ma & E 2018) give the per-example losses and say where the
basins are. What this base gives on top: the interface of ``Problem`` on the examples'
data ``X`` (one row per example: its tilt, or its curvatures), the chains' batched
gradient and loss (``bsim.ensemble``), and the basin of a point by the steepest-descent
map of the full loss (``basin_of``, below).

Basins. Below the saddle's level, {L < L_saddle} falls apart into one connected piece per
minimum, and gradient flow never leaves the piece it starts in (L decreases along it): there
the basin is the piece (``component``, exact and cheap). Above it the full gradient flow is
followed (explicit Euler, step 0.2 / the largest curvature) until the point falls below the
saddle's level (``basins.descend``). A point's *core* is the part of its basin at least half
the basin's depth below the saddle: an escape counts when a chain reaches another basin's core,
so that a chain wandering over the saddle and back is not an escape (Kramers' rate is the
rate of going over and down, not of touching the top).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bsim.problems.base import Problem

#: the basin's core: at least this fraction of the basin's depth below the saddle's level
CORE_FRACTION = 0.5


@dataclass(frozen=True)
class Basin:
    """One minimum of the full loss and what the screen says of it."""

    index: int
    label: str                      # sharp / flat (wells); non-uniform / uniform (nonuniform)
    minimum: tuple[float, ...]      # where it is
    loss: float                     # L at the minimum
    curvature: tuple[float, ...]    # the Hessian's eigenvalues of L at the minimum
    depth: float                    # L(saddle) - L(minimum): the barrier to leave it
    spread: float | None = None     # nonuniform: s_k, the standard deviation of the per-example curvatures


class LandscapeProblem(Problem):
    """The shared part of the landscapes; a subclass sets the examples (``X``), ``basins`` and the
    losses: ``example_losses(theta (K, d), rows (K, B, c)) -> (K, B)``, ``full_loss_many(theta (K, d)) -> (K,)``,
    ``grad_many(theta (K, d), rows (K, B, c)) -> (K, d)`` (the mean gradient of the rows), ``full_grad_many``,
    ``component(theta (K, d)) -> (K,)`` (the basin of points below the saddle's level, else -1)."""

    landscape = True
    per_example_loss = False
    optimum_label = "no single optimum (two basins)"
    #: L at the saddle (the level below which basins are separate pieces)
    saddle_loss: float = 0.0
    saddles: tuple[tuple[float, ...], ...] = ()
    basins: tuple[Basin, ...] = ()
    start_basin: int = 0
    #: the drawing range: theta (1-D) or theta_0 (2-D), and theta_1 (2-D)
    x_range: tuple[float, float] = (-1.0, 1.0)
    y_range: tuple[float, float] | None = None

    def __init__(self, sc, device: torch.device, dtype: torch.dtype):
        super().__init__(device, dtype)
        self.X_test = self.y_test = None
        self.source = "per-example losses of a landscape"

    # ------------------------------------------------ the Problem interface
    @property
    def n_params(self) -> int:
        return self.dim

    def loss(self, theta, X, y):
        return self.example_losses(theta[None], X[None])[0].mean()

    def loss_and_grad(self, theta, idx):
        rows = self.X[idx][None]
        loss = self.example_losses(theta[None], rows)[0].mean()
        return loss, self.grad_many(theta[None], rows)[0]

    def full_grad(self, theta):
        return self.full_grad_many(theta[None])[0]

    def train_loss(self, theta):
        return self.full_loss_many(theta[None])[0]

    # ------------------------------------------------ the chains (bsim.ensemble)
    def chains_grad(self, theta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(K, d): chain k's batch gradient g_B on its batch idx[k] (the mean over the B rows)."""
        rows = self.X.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)
        return self.grad_many(theta, rows)

    def grad_and_trace_many(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G (K, d), tr Sigma (K,)) at every theta_k exactly, from all N per-example gradients
        g_i = grad l_i(theta_k) (``grad_many`` on one example each; N d numbers, cheap for d <= 2):
        tr Sigma = (1/N) sum_i |g_i - G|^2. Tilted wells: g_i = U' + b_i, so tr Sigma = d sigma_b^2 everywhere."""
        K, n = theta.shape[0], self.n_train
        g = self.grad_many(theta.repeat_interleave(n, 0), self.X.repeat(K, 1)[:, None, :]).view(K, n, -1)
        G = g.mean(1)
        return G, ((g - G[:, None, :]) ** 2).sum(-1).mean(1)

    def chains_loss(self, theta: torch.Tensor) -> torch.Tensor:
        """(K,): the full loss L(theta_k) of every chain."""
        return self.full_loss_many(theta)

    # ------------------------------------------------ basins
    def core_of(self, theta: torch.Tensor) -> torch.Tensor:
        """(K,) the basin whose core holds theta_k (at least CORE_FRACTION of its depth below the saddle), else -1."""
        comp, loss = self.component_and_loss(theta)
        levels = getattr(self, "_core_levels", None)
        if levels is None:   # L at the top of each basin's core
            levels = self._core_levels = torch.tensor([self.saddle_loss - CORE_FRACTION * b.depth for b in self.basins],
                                                      dtype=loss.dtype, device=loss.device)
        return torch.where(loss <= levels[comp.clamp(min=0)], comp, comp.clamp(max=-1))

    def component_and_loss(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(component (K,), full loss (K,)) at once (a subclass may share the work)."""
        return self.component(theta), self.full_loss_many(theta)

    def basin_of(self, theta: torch.Tensor) -> torch.Tensor:
        """(K,) the basin of every point by the steepest-descent map of the full loss."""
        from bsim.landscape.basins import descend
        return descend(self, theta)

    @property
    def max_curvature(self) -> float:
        """The largest curvature anywhere (the flow's step is 0.2 / this)."""
        return max(max(b.curvature) for b in self.basins)

    def full_loss_numpy(self, points: np.ndarray) -> np.ndarray:
        """L at (M, d) points, float64 numpy (for drawing)."""
        with torch.no_grad():
            t = torch.as_tensor(points, dtype=self.dtype, device=self.device)
            return self.full_loss_many(t).double().cpu().numpy()


def standardized(values: np.ndarray) -> np.ndarray:
    """Rows centred to mean exactly zero and scaled to covariance exactly the identity (float64).

    1-D: (v - mean) / std. d-D: (v - mean) C^(-1/2), C the covariance over the rows (1/N).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v - v.mean(0)
    if v.ndim == 1:
        return v / v.std()
    cov = v.T @ v / len(v)
    w, q = np.linalg.eigh(cov)
    return v @ (q / np.sqrt(w)) @ q.T


def tilt_mean_error(tilts: np.ndarray) -> float:
    """|mean of the tilts| relative to their largest size (0 when they average to zero)."""
    t = np.asarray(tilts, dtype=np.float64)
    scale = float(np.abs(t).max()) if t.size else 0.0
    return float(np.abs(t.mean(0)).max()) / scale if scale > 0 else 0.0
