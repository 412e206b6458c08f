"""Gradient noise scales at given parameters, from per-example gradients.

With G = (1/N) sum g_i and Sigma = (1/N) sum (g_i - G)(g_i - G)^T over the
whole training set (McCandlish et al. 2018):
- B_simple = tr(Sigma) / |G|^2, the simple noise scale (needs no Hessian);
- B_noise = tr(H Sigma) / (G^T H G), the scale their theory sets B_crit equal
  to; B_simple equals it when H is a multiple of I and differs from it
  otherwise. Given for the linear problems, where H is exact:
  H = X^T diag(w) X / N + l2 I, w = 1 (least squares), p(1 - p) (logistic);
  softmax: (1/N) sum_i (x_i x_i^T) kron (diag p_i - p_i p_i^T) + l2 I.
The per-example gradients come from bsim.stats.perexample: closed form for
the linear problems, torch.func (vmap of grad, in chunks) for the LSTM.
"""

from __future__ import annotations

import math
import weakref

import torch

CHUNK = 256


def per_example_grads(problem, theta: torch.Tensor) -> torch.Tensor:
    """Rows g_i for every training example (N x n_params), via bsim.stats (closed form or torch.func)."""
    from bsim.stats.perexample import per_example_grads as rows
    n, dev = problem.n_train, problem.X.device
    with torch.no_grad():
        return torch.cat([rows(problem, theta, torch.arange(i, min(i + CHUNK, n), device=dev))
                          for i in range(0, n, CHUNK)])


def hessian(problem, theta: torch.Tensor) -> torch.Tensor | None:
    """H(theta) of a linear problem (float64); None for the others."""
    if problem.kind == "softmax":
        from bsim.problems.softmax import hessian64
        W = theta.detach().to(torch.float64).cpu().view(-1, problem.classes).numpy()
        return torch.as_tensor(hessian64(problem.X64, W, problem.l2), device=problem.X.device)
    if problem.kind not in ("linreg", "logreg"):
        return None
    X = problem.X.to(torch.float64)
    if problem.kind == "linreg":
        w = torch.ones(X.shape[0], dtype=torch.float64, device=X.device)
    else:
        p = torch.sigmoid(X @ theta.to(torch.float64))
        w = p * (1 - p)
    H = (X * w[:, None]).T @ X / X.shape[0]
    if problem.l2:
        H = H + problem.l2 * torch.eye(X.shape[1], dtype=torch.float64, device=X.device)
    return H


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(num) and math.isfinite(den)):
        return math.nan
    return num / den if den > 0 else math.inf


def noise_scales(problem, theta: torch.Tensor) -> tuple[float, float | None]:
    """(B_simple, B_noise) at theta; B_noise is None without a Hessian. inf where G = 0."""
    with torch.no_grad():
        g = per_example_grads(problem, theta).to(torch.float64)
        G = g.mean(0)
        D = g - G
        b_simple = _ratio(float((D * D).sum(1).mean()), float(G.dot(G)))
        H = hessian(problem, theta)
        if H is None:
            return b_simple, None
        b_noise = _ratio(float(((D @ H) * D).sum(1).mean()), float(G @ H @ G))
    return b_simple, b_noise


_MOMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def linear_moments(problem) -> tuple:
    """(X, y, |x_i|^2, H, x_i^T H x_i) of a linear problem in float64, computed once per problem;
    H and x^T H x only where H is the same at every theta (least squares), else None."""
    out = _MOMENTS.get(problem)
    if out is None:
        X, y = problem.X.to(torch.float64), problem.y.to(torch.float64)
        H = hessian(problem, None) if problem.kind == "linreg" else None
        out = _MOMENTS[problem] = (X, y, (X * X).sum(1), H, None if H is None else ((X @ H) * X).sum(1))
    return out


def linear_noise_scales(problem, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B_simple, B_noise) of a linear problem at many parameter vectors at once: thetas (M, d) -> (M,), (M,).

    The closed forms of ``noise_scales`` with g_i = r_i x_i (+ l2 theta), Gbar = (1/N) sum r_i x_i:
    tr(Sigma) = (1/N) sum r_i^2 |x_i|^2 - |Gbar|^2, tr(H Sigma) = (1/N) sum r_i^2 x_i^T H x_i - Gbar^T H Gbar,
    over |G|^2 and G^T H G (H per theta for logreg). inf where G = 0, nan where not finite.
    """
    with torch.no_grad():
        X, y, x2, H, xhx = linear_moments(problem)
        T = thetas.to(torch.float64)
        n = X.shape[0]
        z = X @ T.T                                            # (N, M)
        r = problem.link_residual(z, y[:, None])
        gbar = r.T @ X / n                                     # (M, d)
        g = gbar + problem.l2 * T if problem.l2 else gbar
        r2 = r * r
        tr_sigma = r2.T @ x2 / n - (gbar * gbar).sum(1)
        if H is not None:
            tr_h_sigma = r2.T @ xhx / n - (gbar * (gbar @ H)).sum(1)
            ghg = (g * (g @ H)).sum(1)
        else:
            p = torch.sigmoid(z)
            w = p * (1 - p)                                    # (N, M)
            H = torch.einsum("nm,nd,ne->mde", w, X, X) / n     # (M, d, d)
            if problem.l2:
                H = H + problem.l2 * torch.eye(X.shape[1], dtype=torch.float64)
            xhx = torch.einsum("nd,mde,ne->mn", X, H, X)       # (M, N)
            tr_h_sigma = (r2.T * xhx).mean(1) - torch.einsum("md,mde,me->m", gbar, H, gbar)
            ghg = torch.einsum("md,mde,me->m", g, H, g)
        return _ratios(tr_sigma, (g * g).sum(1)), _ratios(tr_h_sigma, ghg)


def _ratios(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``_ratio`` elementwise: nan where either is not finite, inf where den <= 0."""
    out = torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.full_like(num, math.inf))
    return torch.where(torch.isfinite(num) & torch.isfinite(den), out, torch.full_like(num, math.nan))
