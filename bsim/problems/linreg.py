"""Least squares: L = (1/2N)|X theta - y|^2, exact optimum in float64."""

from __future__ import annotations

import numpy as np
import torch

from bsim.errors import BsimInputError
from bsim.problems.linear import LinearProblem, synthetic_features


#: what dist_to_opt is measured against in the interpolation regime (rank X = N <= d)
INTERPOLATION_LABEL = "theta* (minimum-norm interpolating solution: the projection of theta_0 = 0 onto X theta = y)"


class LinReg(LinearProblem):
    kind = "linreg"
    has_optimum = True
    least_squares = True
    optimum_label = "theta* (exact least-squares solution)"
    #: rank X = N <= d: every example is fitted exactly (``solve_optimum``)
    interpolating = False

    def synthesize(self, n, spec, gen):
        X = synthetic_features(n, spec.dim, spec.condition, gen)
        theta_true = torch.randn(spec.dim, generator=gen, dtype=torch.float64)
        y = X @ theta_true + spec.noise * torch.randn(n, generator=gen, dtype=torch.float64)
        return X, y

    def solve_optimum(self, X, y):
        """theta* = argmin |X theta - y|^2 by least squares in float64.

        Interpolation regime (rank X = N <= d): X theta = y has a (d - N)-dimensional family of
        solutions. SGD started at theta_0 moves only within the row space of X, so it converges to
        the projection of theta_0 onto that family; theta_0 = 0 here (``init_params``), which makes
        theta* the minimum-norm solution X^+ y (lstsq's answer). Every example is fitted: the
        residuals, Sigma* and the ball are 0.
        """
        rank = np.linalg.matrix_rank(X)
        if rank == X.shape[0] <= X.shape[1]:
            self.interpolating = True
            self.optimum_label = INTERPOLATION_LABEL if rank < X.shape[1] else self.optimum_label
            return np.linalg.lstsq(X, y, rcond=None)[0]
        if rank < X.shape[1] and self.condition_where:
            raise BsimInputError(f"{self.condition_where}, which makes the synthetic features linearly dependent in "
                                 f"float64 (rank {rank} of {X.shape[1]}); expected a smaller condition number "
                                 f"so that theta* is unique")
        if rank < X.shape[1]:
            raise BsimInputError(f"{self.where}: got linearly dependent features ({X.shape[1]} columns, rank "
                                 f"{rank}); expected independent columns so that theta* is unique")
        return np.linalg.lstsq(X, y, rcond=None)[0]

    def link_residual(self, z, y):
        return z - y

    def point_loss(self, z, y):
        return 0.5 * (z - y) ** 2

    def hessian(self) -> np.ndarray:
        """H = X^T X / N (float64), the same at every theta."""
        return self.X64.T @ self.X64 / len(self.y64)
