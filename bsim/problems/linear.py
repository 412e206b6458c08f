"""Linear models y ~ x . theta (no hidden intercept) with closed-form gradients.

Every per-example gradient has the form g_i = r_i x_i (+ l2 theta), where r_i
is the derivative of the loss with respect to the logit z_i = x_i . theta, so
the batch gradient is one matrix-vector product and the per-example gradients
one broadcast: as fast as the plain step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bsim.problems.base import DATA_STREAM, Problem, cpu_generator
from bsim.problems import dataset
from bsim.scenario import Scenario


def synthetic_features(n: int, dim: int, condition: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian features whose covariance has eigenvalues from 1 down to 1/condition.

    The eigenvalues are log-spaced and the eigenvectors a random rotation, so
    the Hessian of least squares, X^T X / N, has condition number ~ ``condition``.
    """
    eigs = torch.logspace(0.0, -math.log10(condition), dim, dtype=torch.float64) if dim > 1 else torch.ones(1, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    z = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return z @ (q * eigs.sqrt()) @ q.T


class LinearProblem(Problem):
    """Shared machinery of linreg and logreg; subclasses give the loss and optimum."""

    binary = False
    l2 = 0.0
    closed_form_per_example = True
    X_test_raw: np.ndarray | None = None

    def __init__(self, sc: Scenario, device: torch.device, dtype: torch.dtype):
        super().__init__(device, dtype)
        spec = sc.problem
        #: where a data-dependent error points: the data file, or the scenario
        self.where = str(sc.resolve(spec.data)) if spec.data else str(sc.path or "scenario")
        #: synthetic data: a singular X comes from the condition number, so errors name its key and line
        self.condition_where = None if spec.data else \
            f"{sc.where('condition', 'problem') or sc.path or 'scenario'}: problem.condition: got {spec.condition:g}"
        if spec.data:
            ds = dataset.load(spec, sc.resolve(spec.data), sc.resolve(spec.test_data), self.kind)
            X, y, Xt, yt, self.source = ds.X, ds.y, ds.X_test, ds.y_test, ds.source
            #: the test rows as the file has them (before standardizing): what the data panel draws
            self.X_test_raw = ds.X_test_raw
        else:
            gen = cpu_generator(sc.seed, DATA_STREAM)
            n = spec.n_train + spec.n_test
            Xall, yall = self.synthesize(n, spec, gen)
            X, y = Xall[: spec.n_train].numpy(), yall[: spec.n_train].numpy()
            Xt, yt = Xall[spec.n_train:].numpy(), yall[spec.n_train:].numpy()
            self.source = "synthetic data"
        self.X64, self.y64 = X, y
        to = dict(device=device, dtype=dtype)
        self.X, self.y = torch.as_tensor(X, **to), torch.as_tensor(y, **to)
        self.X_test = torch.as_tensor(Xt, **to) if len(yt) else None
        self.y_test = torch.as_tensor(yt, **to) if len(yt) else None
        theta64 = self.solve_optimum(X, y)
        self.theta_star64 = theta64
        self.theta_star = torch.as_tensor(theta64, **to)

    # -- what subclasses provide
    def synthesize(self, n, spec, gen) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def solve_optimum(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def link_residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d loss_i / d z_i at the logits z."""
        raise NotImplementedError

    def point_loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- the shared closed forms
    @property
    def n_params(self) -> int:
        return int(self.X.shape[1])

    def init_params(self, seed: int) -> torch.Tensor:
        """theta_0 = 0: a deterministic start away from theta*."""
        return torch.zeros(self.n_params, device=self.device, dtype=self.dtype)

    def loss(self, theta, X, y):
        """The training objective: the data loss plus (1/2) l2 |theta|^2 (train_loss and batch_loss)."""
        out = self.data_loss(theta, X, y)
        if self.l2:
            out = out + 0.5 * self.l2 * theta.dot(theta)
        return out

    def data_loss(self, theta, X, y):
        """Mean per-example loss over the rows of X, without the l2 term (the same as ``loss`` when l2 = 0)."""
        return self.point_loss(X @ theta, y).mean()

    def test_loss(self, theta):
        """The data loss on the held-out rows: no (1/2) l2 |theta|^2 (that belongs to the training objective)."""
        if self.X_test is None or self.X_test.shape[0] == 0:
            return None
        return self.data_loss(theta, self.X_test, self.y_test)

    def loss_and_grad(self, theta, idx):
        Xb, yb = self.X[idx], self.y[idx]
        z = Xb @ theta
        r = self.link_residual(z, yb)
        g = Xb.T @ r / idx.shape[0]
        loss = self.point_loss(z, yb).mean()
        if self.l2:
            g = g + self.l2 * theta
            loss = loss + 0.5 * self.l2 * theta.dot(theta)
        return loss, g

    def full_grad(self, theta):
        r = self.link_residual(self.X @ theta, self.y)
        g = self.X.T @ r / self.n_train
        return g + self.l2 * theta if self.l2 else g

    # -- many parameter vectors at once (the rows of Theta: the chains, the exact statistics, the sweep)
    def losses_many(self, Theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(M,) mean loss over the rows of X (+ l2/2 |theta|^2) for every row of Theta (M x P)."""
        out = self.point_loss(X @ Theta.T, y[:, None]).mean(0)
        if self.l2:
            out = out + 0.5 * self.l2 * (Theta * Theta).sum(1)
        return out

    def grad_and_square_many(self, Theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                             sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G - l2 theta, mean_i |g_i - l2 theta|^2) over the rows of X for every row of Theta; sq = |x_i|^2."""
        R = self.link_residual(Theta @ X.T, y)
        return R @ X / X.shape[0], (R * R) @ sq / X.shape[0]

    def batch_grads_many(self, Theta: torch.Tensor, Xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """(M, P): row m is (1/B) sum_i g_i(theta_m) - l2 theta_m over chain m's batch Xb[m] (M x B x d)."""
        M, B = yb.shape
        z = torch.bmm(Xb, Theta[:, :, None]).view(M, B)
        return torch.bmm(self.link_residual(z, yb)[:, None, :], Xb).view(M, -1) / B

    def per_example_grads(self, theta: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Rows g_i = r_i x_i (+ l2 theta), closed form, for idx (all examples if None)."""
        Xb, yb = (self.X, self.y) if idx is None else (self.X[idx], self.y[idx])
        G = self.link_residual(Xb @ theta, yb)[:, None] * Xb
        return G + self.l2 * theta if self.l2 else G
