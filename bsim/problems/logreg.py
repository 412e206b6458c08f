"""Logistic regression: l_i = softplus(z_i) - y_i z_i (+ l2/2 |theta|^2), z_i = x_i . theta.

The optimum comes from Newton's method in float64, to machine precision.
When the classes separate there is no finite optimum: the scenario must set
``l2 > 0`` (and says so in its description).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bsim.errors import BsimInputError
from bsim.problems.linear import LinearProblem, synthetic_features


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class LogReg(LinearProblem):
    kind = "logreg"
    binary = True
    has_optimum = True
    optimum_label = "theta* (Newton's method to machine precision)"

    def __init__(self, sc, device, dtype):
        self.l2 = float(sc.problem.l2)
        super().__init__(sc, device, dtype)

    def synthesize(self, n, spec, gen):
        """Labels drawn from a logistic model, so the classes overlap."""
        X = synthetic_features(n, spec.dim, spec.condition, gen)
        w = torch.randn(spec.dim, generator=gen, dtype=torch.float64)
        w = 2.0 * w / w.norm()
        p = torch.sigmoid(X @ w)
        y = (torch.rand(n, generator=gen, dtype=torch.float64) < p).to(torch.float64)
        return X, y

    def solve_optimum(self, X, y):
        """Damped Newton iterations until the step is at machine precision.

        On separable classes (without l2) there is no finite optimum: |theta|
        grows by about the same amount at every Newton step and the steps
        never shrink, so the iteration does not converge and that is an error.
        """
        n, d = X.shape
        theta = np.zeros(d)

        def objective(t):
            z = X @ t
            return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * self.l2 * t @ t

        converged = False
        for _ in range(100):
            p = _sigmoid(X @ theta)
            g = X.T @ (p - y) / n + self.l2 * theta
            H = (X * (p * (1 - p))[:, None]).T @ X / n + self.l2 * np.eye(d)
            try:
                step = np.linalg.solve(H, g)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)):
                break
            t, f0 = 1.0, objective(theta)
            while objective(theta - t * step) > f0 + 1e-12 * abs(f0) and t > 1e-10:
                t *= 0.5
            theta = theta - t * step
            if np.linalg.norm(t * step) <= 1e-12 * (1.0 + np.linalg.norm(theta)):
                converged = True
                break
        g = X.T @ (_sigmoid(X @ theta) - y) / n + self.l2 * theta
        if not converged or not np.all(np.isfinite(theta)) or np.linalg.norm(g) > 1e-8:
            if self.l2 == 0:
                raise BsimInputError(f"{self.where}: the two classes separate (or nearly), so logistic regression "
                                     f"has no finite optimum; expected [problem] l2 > 0, e.g. l2 = 1e-3")
            raise BsimInputError(f"{self.where}: Newton's method did not find the optimum; "
                                 f"expected better-scaled features or a larger [problem] l2")
        return theta

    def link_residual(self, z, y):
        return torch.sigmoid(z) - y

    def point_loss(self, z, y):
        return F.softplus(z) - y * z

    def accuracy(self, theta, X, y):
        """mean_i [ (x_i . theta > 0) == y_i ]: the predicted class is 1 where the probability exceeds 1/2."""
        return ((X @ theta > 0).to(y.dtype) == y).to(theta.dtype).mean()

    def hessian(self) -> np.ndarray:
        """H at theta*: X^T diag(p(1-p)) X / N + l2 I (float64)."""
        p = _sigmoid(self.X64 @ self.theta_star64)
        n, d = self.X64.shape
        return (self.X64 * (p * (1 - p))[:, None]).T @ self.X64 / n + self.l2 * np.eye(d)
