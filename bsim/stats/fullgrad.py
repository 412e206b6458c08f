"""The full gradient G and tr(Sigma) at many parameter vectors at once (linear models).

Both are exact: every per-example gradient enters, none is stored.

- least squares (no l2): O(d^2) per theta from moments precomputed once, with
  e = theta - theta*, r*_i the residuals at theta*:
      G = H e,   mean_i |g_i|^2 = e.(M4 e + 2 m3) + m2,
      M4 = mean |x_i|^2 x_i x_i^T, m3 = mean r*_i |x_i|^2 x_i, m2 = mean r*_i^2 |x_i|^2;
- any linear model: one pass over the data, Z = Theta X^T, R = dloss/dz,
  G = R X / N (+ l2 theta), mean_i |g_i - l2 theta|^2 = R^2 |x|^2 / N.
Then tr(Sigma) = mean_i |g_i|^2 - |G|^2 (l2 theta is the same for every i and cancels).
Everything is computed in float64 (float32 on Apple GPUs, which lack float64).
"""

from __future__ import annotations

import torch


def stats_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class LinRegMoments:
    """G(theta) and tr(Sigma)(theta) for least squares from precomputed moments."""

    def __init__(self, problem):
        dev = problem.device
        self.dtype = stats_dtype(dev)
        to = dict(device=dev, dtype=self.dtype)
        X = torch.as_tensor(problem.X64, dtype=torch.float64)
        y = torch.as_tensor(problem.y64, dtype=torch.float64)
        th = torch.as_tensor(problem.theta_star64, dtype=torch.float64)
        n, d = X.shape
        r = X @ th - y
        sq = (X * X).sum(1)
        H = X.T @ X / n
        M4 = (X * sq[:, None]).T @ X / n
        m3 = X.T @ (r * sq) / n
        self.m2 = float((r * r * sq).mean())
        self.d = d
        self.theta_star = th.to(**to)
        self.KT = torch.cat([H, M4], 0).T.contiguous().to(**to)          # (d, 2d)
        self.kb = torch.cat([torch.zeros(d, dtype=torch.float64), 2 * m3]).to(**to)

    def __call__(self, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(G, tr Sigma, e) for the rows of thetas (K x d)."""
        E = thetas.to(self.dtype) - self.theta_star
        W = torch.addmm(self.kb, E, self.KT)
        G, v = W[:, :self.d], W[:, self.d:]
        s2 = (E * v).sum(1) + self.m2
        return G, s2 - (G * G).sum(1), E


class LinearFullPass:
    """G(theta) and tr(Sigma)(theta) for any linear model by one pass over the data."""

    def __init__(self, problem):
        dev = problem.device
        self.dtype = stats_dtype(dev)
        to = dict(device=dev, dtype=self.dtype)
        self.problem = problem
        self.X = torch.as_tensor(problem.X64, **to)
        self.y = torch.as_tensor(problem.y64, **to)
        self.sq = (self.X * self.X).sum(1)
        self.n = self.X.shape[0]
        self.l2 = float(problem.l2)
        self.theta_star = torch.as_tensor(problem.theta_star64, **to) if problem.has_optimum else None

    def __call__(self, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        th = thetas.to(self.dtype)
        G0, s2 = self.problem.grad_and_square_many(th, self.X, self.y, self.sq)
        tr = s2 - (G0 * G0).sum(1)
        G = G0 + self.l2 * th if self.l2 else G0
        E = None if self.theta_star is None else th - self.theta_star
        return G, tr, E


def full_grad_engine(problem):
    """The fastest exact engine for a linear problem."""
    if problem.least_squares and not problem.l2:
        return LinRegMoments(problem)
    return LinearFullPass(problem)
