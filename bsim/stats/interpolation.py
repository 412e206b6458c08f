"""The interpolation regime of least squares: rank X = N <= d, every example fitted exactly.

Then X theta = y has a family of solutions and bsim's theta* is the one SGD
reaches from theta_0 = 0: the minimum-norm solution X^+ y (``LinReg.solve_optimum``;
in general the projection of theta_0 onto the family, since every step moves
theta within the row space of X). At theta* every residual is 0, so every
per-example gradient vanishes: Sigma* = 0, tr(Sigma) = 0 there, and the ball
is a point (radius 0). The Hessian H = X^T X / N is singular (rank N), so
everything is computed in the row space: with U (d x N) an orthonormal basis
of it, e = theta - theta* = U z stays there and z' = z - lr U^T H_B U z.

What replaces the ball: the linear rate of E|e|^2. Under iid or replacement
sampling E[e e^T] follows S -> E[(I - lr H_B) S (I - lr H_B)] exactly, the
operator T of ``lyapunov`` (with momentum, on (e_t, e_{t-1})), so
E|e_t|^2 ~ C rho(T)^t: rho(T) is the rate per step, exact, at every B.
Under shuffle consecutive batches are not independent and bsim computes no
exact rate: it shows the iid one, labelled so.

Ma, Bassily & Belkin (ICML 2018, "The Power of Interpolation") give the
critical batch size m* = beta / lambda_1, beta = max_i |x_i|^2 and lambda_1 the
largest eigenvalue of H: below m* one step at B is worth about B steps at
B = 1 (with the lr tuned per B), above it about one step of full gradient
descent.
"""

from __future__ import annotations

import numpy as np

from bsim.stats import lyapunov
from bsim.stats.cfactor import c_factor

#: how the rate reads beside each sampling
RATE_LABEL = {"iid": "exact, iid", "replacement": "exact, with replacement",
              "shuffle": "the iid rate: shuffle's is not exact"}


def row_basis(X: np.ndarray) -> np.ndarray:
    """An orthonormal basis (d x rank) of the row space of X, from its singular value decomposition."""
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(X.shape) * np.finfo(float).eps)) if len(s) else 0
    return vt[:rank].T


def critical_batch(X: np.ndarray) -> float:
    """m* = max_i |x_i|^2 / lambda_max(X^T X / N) (Ma, Bassily & Belkin 2018)."""
    beta = float(np.max(np.sum(X * X, axis=1)))
    lam1 = float(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]) if X.shape[1] <= X.shape[0] else \
        float(np.linalg.eigvalsh(X @ X.T / X.shape[0])[-1])    # the same nonzero eigenvalues, the smaller matrix
    return beta / lam1


def steps_per_efold(rate: float | None) -> float | None:
    """-1 / ln rate: the steps over which E|e|^2 falls by a factor e (None unless 0 < rate < 1)."""
    if rate is None or not 0.0 < rate < 1.0:
        return None
    return -1.0 / float(np.log(rate))


def rate(model, batch_size: int, lr: float, sampling: str) -> float | None:
    """rho(T) without momentum: the rate of E|e|^2 per step at this B and lr, None where it is not below 1 (one
    symmetric eigenvalue problem; ``ball.predict_ball`` also solves for the limit and the ball, not needed here)."""
    T = lyapunov.operator(model.H, model.mult, lr, c_factor(model.n, batch_size, sampling), 0.0)
    if not np.all(np.isfinite(T)):
        return None
    rho = lyapunov.spectral_radius(T, symmetric=True)
    return rho if rho < 1.0 else None
