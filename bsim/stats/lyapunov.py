"""The stationary second moment of SGD on a quadratic model, as a linear system.

Near theta* the batch gradient at theta = theta* + e is g_B = H_B e + g*_B with
H_B = mean_{i in B} A_i (A_i = a_i a_i^T + const) and g*_B the batch mean of the
per-example gradients at theta*. SGD with momentum m (PyTorch's convention)
on the state z_t = (e_t, e_{t-1}) is

    e_{t+1} = (1 + m) e_t - m e_{t-1} - lr (H_B e_t + g*_B).

With a fresh batch at every step (iid or replacement sampling) the mean of e
goes to 0, the cross terms vanish and the second moment S = E[z z^T] solves

    S = Abar S Abar^T + lr^2 c_B P (mean_i A_i S11 A_i - H S11 H) P^T + lr^2 c_B P Sigma* P^T

with Abar = I - lr H (m = 0; then this is the generalised Lyapunov equation of
docs/science.md) or [[(1+m) I - lr H, -m I], [I, 0]], P the embedding of the first
block and S11 the block of e_t. The map S -> Abar S Abar^T + ... is positive
(it maps positive semi-definite matrices to positive semi-definite ones), so
its spectral radius rho is one of its eigenvalues, a solution exists exactly
while rho < 1, and rho < 1 exactly when the solution for a positive-definite
right-hand side is positive definite (the test used with momentum).

Matrices are written in the orthonormal basis of symmetric matrices
(E_ii and (E_ij + E_ji)/sqrt 2, ``svec``): n(n+1)/2 unknowns for an n x n S.
"""

from __future__ import annotations

import math

import numpy as np

SQRT2 = math.sqrt(2.0)


def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i <= j, of the svec basis of n x n symmetric matrices."""
    i, j = np.triu_indices(n)
    return i, j


def _alpha(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.where(i == j, 1.0, SQRT2)


def svec(S: np.ndarray) -> np.ndarray:
    i, j = pairs(S.shape[0])
    return S[i, j] * _alpha(i, j)


def smat(s: np.ndarray, n: int) -> np.ndarray:
    i, j = pairs(n)
    S = np.zeros((n, n))
    S[i, j] = s / _alpha(i, j)
    S[j, i] = S[i, j]
    return S


def congruence(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Matrix (in svec coordinates) of S -> (A S B^T + B S A^T) / 2."""
    p, q = pairs(A.shape[0])
    al = _alpha(p, q)
    Ap, Aq, Bp, Bq = A[p], A[q], B[p], B[q]          # rows p, q; columns indexed below by (i, j) = (p, q)
    M = (Ap[:, p] * Bq[:, q] + Ap[:, q] * Bq[:, p] + Bp[:, p] * Aq[:, q] + Bp[:, q] * Aq[:, p])
    return M * (al[:, None] * al[None, :]) / 4.0


def multiplicative(a: np.ndarray, groups: int = 1) -> np.ndarray:
    """Matrix of S -> mean_i A_i S A_i - H' S H' with A_i = a_i a_i^T, H' = mean_i A_i (a is N x d).

    With ``groups`` = r, a has N r rows, r consecutive ones per example, and
    A_i = sum_k a_ik a_ik^T (rank r, softmax); then A_i S A_i = sum_{k,l}
    s_kl (s_kl . S) with s_kl = sym(a_ik a_il^T), in svec coordinates.
    This is the covariance of the batch-size-1 Hessian acting on S; the batch
    of B adds the factor c_B.
    """
    d = a.shape[1]
    n_ex = a.shape[0] // groups
    i, j = pairs(d)
    al = _alpha(i, j)
    if groups == 1:
        K = a[:, i] * a[:, j] * al                   # row i: svec(a_i a_i^T)
    else:
        parts = []
        for k in range(groups):
            for m in range(k, groups):
                ak, am = a[k::groups], a[m::groups]
                w = math.sqrt(2.0) if m > k else 1.0     # s_km and s_mk: the same row, twice
                parts.append((ak[:, i] * am[:, j] + ak[:, j] * am[:, i]) * (0.5 * w) * al)
        K = np.concatenate(parts)
    Hp = a.T @ a / n_ex
    return K.T @ K / n_ex - congruence(Hp, Hp)


#: above this size eigh_once decomposes with torch (the linear models' Hessians up to here: numpy, as always)
TORCH_EIGH_DIM = 100
_EIGH: tuple | None = None     # (the matrix last decomposed, its (eigenvalues, eigenvectors)), set at once


def eigh_once(H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.linalg.eigh(H), kept for the matrix last asked about (the same H object: every prediction of one
    model asks for its Hessian's; at 650 parameters, the digits, each decomposition takes a second or more)."""
    global _EIGH
    last = _EIGH
    if last is not None and last[0] is H:
        return last[1]
    if H.shape[0] > TORCH_EIGH_DIM:    # torch follows set_num_threads(1): a threaded LAPACK on a busy CPU is 10x slower
        import torch
        lam, U = torch.linalg.eigh(torch.from_numpy(np.ascontiguousarray(H, dtype=np.float64)))
        eig = (lam.numpy(), U.numpy())
    else:
        eig = np.linalg.eigh(H)
    _EIGH = (H, eig)
    return eig


def transition(H: np.ndarray, lr: float, momentum: float) -> np.ndarray:
    """Abar: the mean linear map of one step on e (m = 0) or on (e_t, e_{t-1})."""
    d = H.shape[0]
    if momentum == 0.0:
        return np.eye(d) - lr * H
    eye = np.eye(d)
    return np.block([[(1.0 + momentum) * eye - lr * H, -momentum * eye], [eye, np.zeros((d, d))]])


def embed_index(d: int, n: int) -> np.ndarray:
    """Positions in the svec basis of n x n matrices of the pairs of the leading d x d block."""
    pi, pj = pairs(n)
    pos = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(pi, pj))}
    di, dj = pairs(d)
    return np.array([pos[(int(a), int(b))] for a, b in zip(di, dj)], dtype=int)


def operator(H: np.ndarray, mult: np.ndarray | None, lr: float, c: float, momentum: float) -> np.ndarray:
    """T in svec coordinates: S -> Abar S Abar^T + lr^2 c P Mult(S11) P^T (Mult omitted when None)."""
    Ab = transition(H, lr, momentum)
    T = congruence(Ab, Ab)
    if mult is not None and c != 0.0:
        d = H.shape[0]
        idx = embed_index(d, Ab.shape[0])
        T[np.ix_(idx, idx)] += lr * lr * c * mult
    return T


def source(sigma_star: np.ndarray, lr: float, c: float, momentum: float) -> np.ndarray:
    """svec of lr^2 c_B P Sigma* P^T."""
    d = sigma_star.shape[0]
    n = d if momentum == 0.0 else 2 * d
    C = np.zeros((n, n))
    C[:d, :d] = lr * lr * c * sigma_star
    return svec(C)


def solve_stationary(T: np.ndarray, C: np.ndarray) -> np.ndarray | None:
    """S with S = T(S) + C (svec), or None when I - T is singular."""
    try:
        return np.linalg.solve(np.eye(T.shape[0]) - T, C)
    except np.linalg.LinAlgError:
        return None


def is_stable(T: np.ndarray, n: int) -> bool:
    """rho(T) < 1 for a positive map T: X = T(X) + I has a positive-definite solution."""
    x = solve_stationary(T, svec(np.eye(n)))
    if x is None or not np.all(np.isfinite(x)):
        return False
    return bool(np.linalg.eigvalsh(smat(x, n))[0] > 0.0)


def spectral_radius(T: np.ndarray, symmetric: bool, max_dense: int = 300, iters: int = 500) -> float:
    """rho(T): eigvalsh when T is symmetric (m = 0), eigvals up to ``max_dense`` unknowns, else power
    iteration from the identity (inside the cone of a positive map: it converges to the Perron root)."""
    if symmetric:
        return float(np.abs(np.linalg.eigvalsh(T)).max())
    if T.shape[0] <= max_dense:
        return float(np.abs(np.linalg.eigvals(T)).max())
    n = int(round((math.sqrt(8 * T.shape[0] + 1) - 1) / 2))
    x = svec(np.eye(n))
    x /= np.linalg.norm(x)
    rho = 0.0
    for _ in range(iters):
        y = T @ x
        rho = float(np.linalg.norm(y))
        if rho == 0.0 or not math.isfinite(rho):
            break
        x = y / rho
    return rho


def lr_limit_plain(H: np.ndarray, mult: np.ndarray, c: float) -> float:
    """The largest stable lr without momentum.

    T(lr) = I - lr L + lr^2 Q with L: S -> H S + S H and Q: S -> H S H + c Mult(S).
    rho(T) = lambda_max(T) (a positive map), and lambda_max(T) >= 1 exactly when
    lr v.Q v >= v.L v for some v: the limit is 1 / mu_max with mu the
    generalised eigenvalues of (Q, L).
    """
    d = H.shape[0]
    L = 2.0 * congruence(H, np.eye(d))
    Q = congruence(H, H) + c * mult
    Lc = np.linalg.cholesky(L)
    M = np.linalg.solve(Lc, np.linalg.solve(Lc, Q).T).T
    mu = np.linalg.eigvalsh((M + M.T) / 2.0)[-1]
    return math.inf if mu <= 0 else float(1.0 / mu)


def lr_limit_bisect(H: np.ndarray, mult: np.ndarray, c: float, momentum: float, rtol: float = 1e-3) -> float:
    """The largest stable lr with momentum, by bisection on the positive-definite test.

    The stable learning rates are taken to be an interval (0, limit); the
    deterministic heavy-ball limit 2 (1 + m) / lambda_max bounds it above.
    T(lr) = T0 - 2 lr T1 + lr^2 T2 is assembled once (Abar = A0 - lr A1).
    """
    d = H.shape[0]
    A0 = transition(np.zeros_like(H), 0.0, momentum)
    A1 = A0 - transition(H, 1.0, momentum)            # the part of Abar proportional to lr
    T0, T1, T2 = congruence(A0, A0), congruence(A0, A1), congruence(A1, A1)
    idx = embed_index(d, A0.shape[0])
    T2[np.ix_(idx, idx)] += c * mult
    n = A0.shape[0]
    hi = 2.0 * (1.0 + momentum) / np.linalg.eigvalsh(H)[-1]
    lo = 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if is_stable(T0 - 2.0 * mid * T1 + mid * mid * T2, n):
            lo = mid
        else:
            hi = mid
    return float(lo)
