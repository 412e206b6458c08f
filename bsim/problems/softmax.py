"""Softmax regression: K classes, l_i = logsumexp(z_i) - z_i[y_i] (+ l2/2 |theta|^2), z_i = x_i W.

theta is W (d x K) flattened row by row: theta[j K + k] = W[j, k]. With
p_i = softmax(z_i) and r_i = p_i - e_{y_i}, the per-example gradient is the
outer product g_i = x_i r_i^T (+ l2 W), so |g_i - l2 W|^2 = |x_i|^2 |r_i|^2
and G and tr(Sigma) are exact from one pass, as for logistic regression.
The per-example Hessian is A_i = (x_i x_i^T) kron (diag p_i - p_i p_i^T);
the optimum comes from Newton's method in float64 (each step by conjugate
gradients on Hessian-vector products), to machine precision. l2 > 0 is required: the loss does not change
when one vector is added to every class's weights, and the L2 term picks the
solution whose class weights sum to zero.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bsim.errors import BsimInputError
from bsim.problems.linear import LinearProblem, synthetic_features


# The float64 computations below run on torch's CPU tensors, not numpy's: they follow torch.set_num_threads
# (bsim runs with one thread), where a multi-threaded BLAS on a busy machine is 30x slower than one thread.

def softmax64(Z: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(Z, dtype=torch.float64), dim=-1).numpy()


def objective64(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, l2: float) -> float:
    """(1/N) sum_i [logsumexp(x_i W) - (x_i W)[y_i]] + (l2/2) |W|^2 (float64 tensors, y as int64)."""
    Z = X @ W
    return float((torch.logsumexp(Z, dim=1) - Z.gather(1, y[:, None])[:, 0]).mean() + 0.5 * l2 * (W * W).sum())


def hessian64(X: np.ndarray, W: np.ndarray, l2: float) -> np.ndarray:
    """H = (1/N) sum_i (x_i x_i^T) kron (diag p_i - p_i p_i^T) + l2 I, (dK x dK), theta's order (j, k)."""
    X = torch.as_tensor(X, dtype=torch.float64)
    n, d = X.shape
    K = W.shape[1]
    P = torch.softmax(X @ torch.as_tensor(W, dtype=torch.float64), dim=1)
    U = (X[:, :, None] * P[:, None, :]).reshape(n, d * K)          # rows x_i kron p_i
    H = -(U.T @ U)
    H4 = H.view(d, K, d, K)
    for k in range(K):
        H4[:, k, :, k] += (X * P[:, k:k + 1]).T @ X
    H = H / n
    H.diagonal().add_(l2)
    return H.numpy()


def conjugate_gradient(hv, b: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    """x with hv(x) = b (hv symmetric positive definite) by conjugate gradients, to |residual| <= rtol |b|."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = float((r * r).sum())
    stop = (rtol * rr ** 0.5) ** 2
    for _ in range(10 * b.numel()):
        if rr <= stop:
            break
        Hp = hv(p)
        alpha = rr / float((p * Hp).sum())
        x += alpha * p
        r -= alpha * Hp
        rr, rr_old = float((r * r).sum()), rr
        p = r + (rr / rr_old) * p
    return x


class Softmax(LinearProblem):
    kind = "softmax"
    has_optimum = True
    optimum_label = "theta* (Newton's method to machine precision)"
    #: the linearised ball against 512 chains (tests/stats/test_stats_softmax.py's problem), for the ball's note
    linearisation_error = ("measured on 3 classes in 2-D (N = 256, l2 = 0.05, B = 8, iid, 512 chains) it was within "
                           "0.1% at 0.05x, 2% low at 0.2x and 0.4% high at 0.5x the stability limit (mean square)")

    def __init__(self, sc, device, dtype):
        self.l2 = float(sc.problem.l2)
        self.classes = int(sc.problem.classes)
        super().__init__(sc, device, dtype)

    # -- data and optimum
    def synthesize(self, n, spec, gen):
        """Labels drawn from a softmax model with class weights of norm 2, so the classes overlap."""
        X = synthetic_features(n, spec.dim, spec.condition, gen)
        W = torch.randn(spec.dim, self.classes, generator=gen, dtype=torch.float64)
        W = 2.0 * W / W.norm(dim=0, keepdim=True)
        y = torch.multinomial(torch.softmax(X @ W, dim=1), 1, generator=gen)[:, 0].to(torch.float64)
        return X, y

    def solve_optimum(self, X, y):
        """Newton's method, each step by conjugate gradients on Hessian-vector products (the dK x dK
        Hessian is never formed), with a backtracking line search, until the step is at machine precision."""
        n, d = X.shape
        K, l2 = self.classes, self.l2
        X = torch.as_tensor(X, dtype=torch.float64)
        y = torch.as_tensor(y, dtype=torch.float64).long()
        Y = F.one_hot(y, K).to(torch.float64)
        W = torch.zeros(d, K, dtype=torch.float64)
        converged = False
        for _ in range(100):
            P = torch.softmax(X @ W, dim=1)
            G = X.T @ (P - Y) / n + l2 * W

            def hv(V, P=P):
                Q = P * (X @ V)
                return X.T @ (Q - P * Q.sum(dim=1, keepdim=True)) / n + l2 * V

            step = conjugate_gradient(hv, G)
            if not bool(torch.isfinite(step).all()):
                break
            t, f0 = 1.0, objective64(X, y, W, l2)
            while objective64(X, y, W - t * step, l2) > f0 + 1e-12 * abs(f0) and t > 1e-10:
                t *= 0.5
            W = W - t * step
            if float((t * step).norm()) <= 1e-12 * (1.0 + float(W.norm())):
                converged = True
                break
        G = X.T @ (torch.softmax(X @ W, dim=1) - Y) / n + l2 * W
        if not converged or not bool(torch.isfinite(W).all()) or float(G.norm()) > 1e-8:
            raise BsimInputError(f"{self.where}: Newton's method did not find the softmax optimum; "
                                 f"expected better-scaled features (standardize = true) or a larger [problem] l2")
        return W.reshape(-1).numpy()

    # -- the model
    @property
    def n_params(self) -> int:
        return int(self.X.shape[1]) * self.classes

    def onehot(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.one_hot(y.long(), self.classes).to(dtype)

    def link_residual(self, z, y):
        """d l_i / d z_i = softmax(z_i) - e_{y_i}, for logits z of shape (..., K)."""
        return torch.softmax(z, dim=-1) - self.onehot(y, z.dtype)

    def point_loss(self, z, y):
        """logsumexp(z_i) - z_i[y_i] for logits (..., K) and labels (...) (broadcast)."""
        return torch.logsumexp(z, dim=-1) - (z * self.onehot(y, z.dtype)).sum(-1)

    def weights(self, theta: torch.Tensor) -> torch.Tensor:
        """W (d x K), a view of theta (or (..., d, K) for a stack of them)."""
        return theta.view(*theta.shape[:-1], -1, self.classes)

    def data_loss(self, theta, X, y):
        return self.point_loss(X @ self.weights(theta), y).mean()

    def loss_and_grad(self, theta, idx):
        Xb, yb = self.X[idx], self.y[idx]
        z = Xb @ self.weights(theta)
        g = (Xb.T @ self.link_residual(z, yb)).view(-1) / idx.shape[0] + self.l2 * theta
        loss = self.point_loss(z, yb).mean() + 0.5 * self.l2 * theta.dot(theta)
        return loss, g

    def full_grad(self, theta):
        R = self.link_residual(self.X @ self.weights(theta), self.y)
        return (self.X.T @ R).view(-1) / self.n_train + self.l2 * theta

    def per_example_grads(self, theta, idx=None):
        """Rows g_i = x_i kron r_i (+ l2 theta), closed form."""
        Xb, yb = (self.X, self.y) if idx is None else (self.X[idx], self.y[idx])
        R = self.link_residual(Xb @ self.weights(theta), yb)
        return (Xb[:, :, None] * R[:, None, :]).reshape(Xb.shape[0], -1) + self.l2 * theta

    def predict(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """The predicted class of every row: argmax_k (x W)[k] (first of ties)."""
        return (X @ self.weights(theta)).argmax(-1)

    def accuracy(self, theta, X, y):
        """mean_i [argmax_k z_ik == y_i]."""
        return (self.predict(theta, X).to(y.dtype) == y).to(theta.dtype).mean()

    def class_accuracy(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> list[float | None]:
        """Per class k: the fraction of the rows of class k classified right (None: no row of class k)."""
        right = (self.predict(theta, X).to(y.dtype) == y).to(torch.float64)
        yk = y.long()
        total = torch.bincount(yk, minlength=self.classes).tolist()
        hits = torch.bincount(yk, weights=right, minlength=self.classes).tolist()
        return [h / t if t else None for h, t in zip(hits, total)]

    # -- many parameter vectors at once (the chains, the exact statistics, the sweep)
    def losses_many(self, Theta, X, y):
        Z = X @ self.weights(Theta)                      # (M, N, K)
        return self.point_loss(Z, y).mean(-1) + 0.5 * self.l2 * (Theta * Theta).sum(-1)

    def grad_and_square_many(self, Theta, X, y, sq):
        R = self.link_residual(X @ self.weights(Theta), y)               # (M, N, K)
        G0 = (X.T @ R).reshape(Theta.shape[0], -1) / X.shape[0]
        return G0, (R * R).sum(-1) @ sq / X.shape[0]

    def batch_grads_many(self, Theta, Xb, yb):
        R = self.link_residual(torch.bmm(Xb, self.weights(Theta)), yb)   # (M, B, K)
        return torch.bmm(Xb.transpose(1, 2), R).reshape(Theta.shape[0], -1) / Xb.shape[1]

    # -- the quadratic model at theta* (bsim.stats.ball)
    def hessian(self) -> np.ndarray:
        """H at theta* (float64, dK x dK)."""
        return hessian64(self.X64, self.theta_star64.reshape(-1, self.classes), self.l2)

    def hessian_factors(self) -> np.ndarray:
        """Rows a_ik = x_i kron c_ik (N K x dK, K consecutive rows per example) with
        A_i = sum_k a_ik a_ik^T = (x_i x_i^T) kron (diag p_i - p_i p_i^T): c_ik the columns of
        C_i = diag(sqrt p_i) - p_i sqrt(p_i)^T, for which C_i C_i^T = diag p_i - p_i p_i^T."""
        X = self.X64
        P = softmax64(X @ self.theta_star64.reshape(-1, self.classes))
        s = np.sqrt(P)
        C = np.einsum("ik,kl->ikl", s, np.eye(self.classes)) - P[:, :, None] * s[:, None, :]   # (N, K, K)
        a = X[:, None, :, None] * C.transpose(0, 2, 1)[:, :, None, :]                         # (N, k, d, K)
        return a.reshape(X.shape[0] * self.classes, -1)

    def gradient_covariance64(self) -> np.ndarray:
        """Sigma* = (1/N) sum_i (g_i - G)(g_i - G)^T at theta* (float64, dK x dK)."""
        X = torch.as_tensor(self.X64, dtype=torch.float64)
        W = torch.as_tensor(self.theta_star64, dtype=torch.float64).view(-1, self.classes)
        R = torch.softmax(X @ W, dim=1) - F.one_hot(torch.as_tensor(self.y64).long(), self.classes).to(torch.float64)
        g = (X[:, :, None] * R[:, None, :]).reshape(X.shape[0], -1)      # the l2 term is the same for every i
        gc = g - g.mean(0)
        return (gc.T @ gc / X.shape[0]).numpy()
