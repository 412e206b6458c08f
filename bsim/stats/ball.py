"""The predicted epsilon-ball: stationary RMS distance of SGD's iterates to theta*.

For least squares the model of ``lyapunov`` is exact (the per-example
Hessians A_i = x_i x_i^T do not depend on theta) and the prediction is exact
for iid and replacement sampling. For logistic regression it is the
linearisation at theta*: A_i = p_i (1 - p_i) x_i x_i^T (+ l2 I) and the
per-example gradients at theta*. With shuffled epochs the prediction shown is
the reshuffled one (bsim.stats.reshuffled: shuffling cancels noise within an
epoch, so the ball is smaller), with the iid prediction kept beside it.

Every prediction carries its kind, the word of the CSV column ``ball_theory``:
"exact" (least squares, iid or replacement), "reshuffled" (least squares,
shuffle: computed numerically over sampled permutations, ``shuffled_ball``),
"reshuffled-approx" (the analytic approximation, where the sampled one does
not fit its budget), "linearised" (logistic regression, any sampling), "none"
(no prediction: the LSTM; ``NO_THEORY``).

ball radius = sqrt(tr S11); approximations: additive noise (drop the
multiplicative term) and small lr, tr S11 ~ lr c_B tr(H^-1 Sigma*) / (2 (1 - m)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from bsim.stats import interpolation, lyapunov
from bsim.stats import epoch_map, shuffled_ball
from bsim.stats import reshuffled as reshuffled_ball
from bsim.stats.cfactor import c_factor

#: the kinds of prediction (the CSV column ``ball_theory``); "none" where there is no prediction
KINDS = ("exact", "reshuffled", "reshuffled-approx", "linearised", "none")
NO_THEORY = "none"
#: the linearised logistic ball against real chains (tests/stats/test_stats_ball.py): fraction of the limit -> how low
LINEARISED_BIAS = ((0.05, 0.03), (0.2, 0.13), (0.5, 0.31))
#: where LINEARISED_BIAS was measured, and the same fractions measured on another data set (an independent audit)
LINEARISED_BIAS_WHERE = "the logreg scenario (data seed 2027, N = 256, B = 8, 500 chains)"
LINEARISED_BIAS_ELSEWHERE = "0.7%, 3.2%, 9.4% on another data set"

#: largest dimension for which the exact d(d+1)/2 (or, with momentum, d(2d+1)) system is solved
MAX_DIM_PLAIN = 40
MAX_DIM_MOMENTUM = 20
#: under shuffle the shuffled stability limit is computed (a root search) from this fraction of the iid one
LIMIT_FROM = 0.8
#: burn-in before the measured ball counts, in relaxation times of the mean, -2 / ln rho(T) ~ 1 / (lr lambda_min)
BURN_IN_RELAXATIONS = 8


@dataclass(frozen=True)
class QuadModel:
    """What the theory needs of a problem, in float64: e' = e - lr (H_B e + g*_B)."""

    H: np.ndarray            # mean Hessian at theta* (d x d), l2 included
    a: np.ndarray            # N x d: per-example Hessians are a_i a_i^T (+ a constant, which cancels)
    sigma_star: np.ndarray   # (1/N) sum (g_i* - G*)(g_i* - G*)^T at theta*
    n: int
    label: str               # "exact" | "linearisation at theta*"
    #: interpolation (rank X = N <= d): an orthonormal basis U (d x N) of X's row space; H, a and sigma_star
    #: are then U^T H U, X U and U^T Sigma* U (= 0), and e = U z (``bsim.stats.interpolation``)
    basis: np.ndarray | None = None
    #: consecutive rows of a per example: A_i = sum of ``groups`` rank-one terms (softmax: K classes)
    groups: int = 1
    #: where this kind of problem's linearisation error was measured, and how large (None: logistic regression's)
    bias: str | None = None

    #: the per-example gradients at theta* (N x d; None where not kept): the sampled reshuffled ball needs them
    grads: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.H.shape[0]

    @cached_property
    def epoch(self) -> epoch_map.EpochModel | None:
        """The shuffled epoch map's view of the model (``epoch_map``), None without per-example gradients."""
        if self.grads is None or self.a.shape[0] != self.n:
            return None
        return epoch_map.epoch_model(self.H, self.a, self.grads)

    @property
    def interpolating(self) -> bool:
        return self.basis is not None

    @cached_property
    def mult(self) -> np.ndarray:
        """lyapunov.multiplicative(a), computed once per model (O(N d^4): seconds at d = 40, N = 10^4)."""
        return lyapunov.multiplicative(self.a, self.groups)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def quad_model(problem) -> QuadModel | None:
    """The quadratic model of a linear problem at theta* (None for problems without one)."""
    if not (problem.closed_form_per_example and problem.has_optimum):
        return None
    X, y, th = problem.X64, problem.y64, problem.theta_star64
    n, d = X.shape
    l2 = float(problem.l2)
    if getattr(problem, "interpolating", False):    # every example fitted: the row space, Sigma* = 0
        U = interpolation.row_basis(X)
        a = X @ U
        return QuadModel(H=a.T @ a / n, a=a, sigma_star=np.zeros((U.shape[1], U.shape[1])), n=n, label="exact",
                         basis=U)
    if hasattr(problem, "hessian_factors"):         # softmax: A_i of rank K - 1, K factor rows per example
        a = problem.hessian_factors() if problem.n_params <= MAX_DIM_PLAIN else np.zeros((0, problem.n_params))
        return QuadModel(H=problem.hessian(), a=a, sigma_star=problem.gradient_covariance64(), n=n,
                         label="linearisation at theta*", groups=problem.classes, bias=problem.linearisation_error)
    if problem.least_squares:
        a = X
        resid = X @ th - y
        label = "exact"
    else:
        p = sigmoid(X @ th)
        a = X * np.sqrt(p * (1.0 - p))[:, None]
        resid = p - y
        label = "linearisation at theta*"
    g = resid[:, None] * X + l2 * th
    gc = g - g.mean(axis=0)
    H = a.T @ a / n + l2 * np.eye(d)
    return QuadModel(H=H, a=a, sigma_star=gc.T @ gc / n, n=n, label=label, grads=g)


@dataclass(frozen=True)
class BallTheory:
    """The predicted ball for one (batch size, lr, momentum, sampling).

    radius: sqrt(tr S) of the exact (or linearised) equation, None when unstable
    or not computed (``note`` says why). covariance: S (d x d), the stationary
    second moment of theta - theta*. lr_limit: the largest stable lr at this
    batch size and momentum (spectral radius of the operator = 1).
    relaxation_steps: -2 / ln rho, the time for the mean to relax (~ 1/(lr lambda_min)).
    kind: one of KINDS. Under shuffle sampling radius and covariance are the
    reshuffled prediction and radius_iid the iid one beside it (equal to radius
    otherwise); radius_additive is then the reshuffled additive model and
    radius_small_lr None. limit_fraction: lr / lr_limit. correction: the
    multiplicative correction of the reshuffled prediction (None otherwise).
    """

    label: str
    sampling: str
    c_b: float
    stable: bool
    radius: float | None
    covariance: np.ndarray | None
    radius_additive: float | None
    radius_small_lr: float | None
    lr_limit: float | None
    spectral_radius: float | None
    relaxation_steps: float
    note: str
    kind: str = "exact"
    radius_iid: float | None = None
    limit_fraction: float | None = None
    correction: float | None = None
    # under shuffle (``shuffled_ball``): the sampled prediction's SE, the analytic approximation beside it, the
    # iid limit beside the shuffled one (lr_limit, with its SE, once computed), rho(E[M kron M]) per epoch and
    # its SE, the permutations sampled
    radius_se: float | None = None
    radius_approx: float | None = None
    lr_limit_iid: float | None = None
    lr_limit_se: float | None = None
    epoch_rho: float | None = None
    epoch_rho_se: float | None = None
    perms: int | None = None

    @property
    def burn_in(self) -> int:
        """Steps discarded before the measured ball counts."""
        return max(10, int(math.ceil(BURN_IN_RELAXATIONS * self.relaxation_steps)))


def _radius(S: np.ndarray | None) -> float | None:
    if S is None or not np.all(np.isfinite(S)):
        return None
    tr = float(np.trace(S))
    return math.sqrt(tr) if tr >= 0 else None


def additive_plain(model: QuadModel, lr: float, c: float) -> np.ndarray | None:
    """S = (I - lr H) S (I - lr H) + lr^2 c Sigma*, solved in the eigenbasis of H."""
    lam, U = lyapunov.eigh_once(model.H)
    f = 1.0 - lr * lam
    den = 1.0 - f[:, None] * f[None, :]
    if np.any(den <= 0):
        return None
    St = (U.T @ model.sigma_star @ U) * (lr * lr * c) / den
    return U @ St @ U.T


def small_lr_trace(model: QuadModel, lr: float, c: float, momentum: float) -> float:
    """tr S ~ lr c_B tr(H^-1 Sigma*) / (2 (1 - m)), from H S + S H = lr c_B Sigma* / (1 - m)."""
    return lr * c * float(np.trace(np.linalg.solve(model.H, model.sigma_star))) / (2.0 * (1.0 - momentum))


def predict_ball(model: QuadModel, batch_size: int, lr: float, momentum: float, sampling: str,
                 lr_limit: float | None = None, drop_last: bool = False, quick: bool = False) -> BallTheory:
    """The stationary ball and its approximations for these settings, labelled with its kind.

    iid and replacement: the exact (least squares) or linearised (logistic) solution of the
    generalised Lyapunov equation. shuffle: the reshuffled prediction (``bsim.stats.reshuffled``,
    epochs of N // B batches of B and a short last batch, or none with ``drop_last``), with
    the iid prediction in ``radius_iid``. Any lr is accepted: where lr is so large that the
    operators overflow (lr ~ 1e154 and above), the settings are unstable and the prediction
    says so (no warning, no exception).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # non-finite results are checked
        if model.interpolating:
            return _predict_interpolating(model, batch_size, lr, momentum, sampling, lr_limit)
        return _predict_ball(model, batch_size, lr, momentum, sampling, lr_limit, drop_last, quick)


def _predict_interpolating(model: QuadModel, batch_size: int, lr: float, momentum: float, sampling: str,
                           lr_limit: float | None) -> BallTheory:
    """Every example fitted: the ball is the point theta* (radius 0) in every sampling, wherever SGD converges;
    the rate of E|e|^2 per step is rho(T) in the row space, exact for iid and replacement
    (``bsim.stats.interpolation``); under shuffle the iid rate and stability limit, labelled so."""
    th = _predict_iid(model, batch_size, lr, momentum, sampling, lr_limit)
    U = model.basis
    notes = [th.note] if th.note else []
    if th.stable:
        notes.append("every example fitted: the ball is the point theta*; E|e|^2 falls by the rate per step, "
                     + interpolation.RATE_LABEL[sampling])
    cov = U @ th.covariance @ U.T if th.covariance is not None else None
    radius = 0.0 if th.stable else None
    label = f"exact, interpolation ({'the iid limit' if sampling == 'shuffle' else th.label.split('(')[-1][:-1]})"
    return replace(th, label=label, kind="exact", radius=radius, covariance=cov, radius_iid=radius,
                   radius_additive=radius, radius_small_lr=radius,
                   limit_fraction=lr / th.lr_limit if th.lr_limit else None, note="; ".join(notes))


def _predict_ball(model: QuadModel, batch_size: int, lr: float, momentum: float, sampling: str,
                  lr_limit: float | None, drop_last: bool, quick: bool = False) -> BallTheory:
    th = _predict_iid(model, batch_size, lr, momentum, sampling, lr_limit)
    linearised = model.label != "exact"
    notes = [th.note] if th.note else []
    fraction = lr / th.lr_limit if th.lr_limit else None
    if linearised:
        bias = ", ".join(f"{low:.0%} low at {at:g}x" for at, low in LINEARISED_BIAS)
        where = f"; lr is at {fraction:.2g}x the limit" if fraction is not None else ""
        if model.bias:
            notes.append(f"linearisation at theta*: valid at small lr; {model.bias} (the error depends on the data; "
                         f"an ensemble measures it here){where}")
        else:
            notes.append(f"linearisation at theta*: valid at small lr; measured on {LINEARISED_BIAS_WHERE} it was "
                         f"{bias} the stability limit ({LINEARISED_BIAS_ELSEWHERE}: the error depends on the data; "
                         f"an ensemble measures it here){where}")
    kind = "linearised" if linearised else ("reshuffled" if sampling == "shuffle" else "exact")
    if sampling != "shuffle":
        return replace(th, kind=kind, radius_iid=th.radius, limit_fraction=fraction, note="; ".join(notes))
    res = None      # the analytic approximation beside the sampled prediction (the prediction over budget)
    if th.stable:
        exact_iid = th.covariance
        add_iid = _iid_additive_cov(model, lr, th.c_b, momentum) if exact_iid is not None else None
        res = reshuffled_ball.predict(model.H, model.sigma_star, model.n, batch_size, lr, momentum, drop_last,
                                      exact_iid, add_iid)
        if res is not None and res.note:
            notes.append(res.note)
    if not th.stable:       # the iid "unstable" is not the shuffled one (``shuffled_ball`` decides)
        notes = [x for x in notes if not x.startswith("unstable")]
    return shuffled_ball.shuffled(model, th, res, batch_size, lr, momentum, drop_last, kind, notes, quick)


def _iid_additive_cov(model: QuadModel, lr: float, c: float, momentum: float) -> np.ndarray | None:
    """The additive-noise iid second moment of e (d x d), the denominator of the reshuffled correction."""
    if momentum == 0.0:
        return additive_plain(model, lr, c)
    n_state = 2 * model.dim
    sa = lyapunov.solve_stationary(lyapunov.operator(model.H, None, lr, c, momentum), lyapunov.source(model.sigma_star, lr, c, momentum))
    return None if sa is None else lyapunov.smat(sa, n_state)[:model.dim, :model.dim]


def _predict_iid(model: QuadModel, batch_size: int, lr: float, momentum: float, sampling: str,
                 lr_limit: float | None) -> BallTheory:
    """The exact (or linearised) iid stationary ball and its approximations (shuffle: the iid one)."""
    d = model.dim
    c = c_factor(model.n, batch_size, sampling)
    theory_sampling = "iid" if sampling == "shuffle" else sampling
    label = f"{model.label} ({'with replacement' if theory_sampling == 'replacement' else 'iid sampling'})"
    notes = []
    lam = lyapunov.eigh_once(model.H)[0]
    small = math.sqrt(max(small_lr_trace(model, lr, c, momentum), 0.0))
    exact_ok = d <= (MAX_DIM_PLAIN if momentum == 0.0 else MAX_DIM_MOMENTUM)
    S = add = rho = limit = None
    if exact_ok:
        mult = model.mult
        T = lyapunov.operator(model.H, mult, lr, c, momentum)
        n_state = d if momentum == 0.0 else 2 * d
        if momentum == 0.0:
            limit = lr_limit if lr_limit is not None else lyapunov.lr_limit_plain(model.H, mult, c)
        else:
            limit = lr_limit if lr_limit is not None else lyapunov.lr_limit_bisect(model.H, mult, c, momentum)
        if not np.all(np.isfinite(T)):
            stable = False          # one step's operator overflows: far above any stable lr
        elif momentum == 0.0:
            rho = lyapunov.spectral_radius(T, symmetric=True)
            stable = rho < 1.0
        else:
            stable = lyapunov.is_stable(T, n_state)
            rho = lyapunov.spectral_radius(T, symmetric=False) if stable else None
        if stable:
            s = lyapunov.solve_stationary(T, lyapunov.source(model.sigma_star, lr, c, momentum))
            S = None if s is None else lyapunov.smat(s, n_state)[:d, :d]
            Ta = lyapunov.operator(model.H, None, lr, c, momentum)
            sa = lyapunov.solve_stationary(Ta, lyapunov.source(model.sigma_star, lr, c, momentum))
            add = None if sa is None else lyapunov.smat(sa, n_state)[:d, :d]
    else:
        notes.append(f"exact prediction not computed: d = {d} is above "
                     f"{MAX_DIM_PLAIN if momentum == 0.0 else MAX_DIM_MOMENTUM}"
                     f"{' with momentum' if momentum else ''} (a system of "
                     f"{(d if momentum == 0.0 else 2 * d) * ((d if momentum == 0.0 else 2 * d) + 1) // 2} unknowns)")
        stable = bool(lr * lam[-1] < 2.0 * (1.0 + momentum))
        if momentum == 0.0:
            add = additive_plain(model, lr, c)
    if not stable:
        notes.insert(0, f"unstable: lr above the limit {limit:.4g}" if limit is not None
                     else f"unstable: lr above the limit {2 * (1 + momentum) / lam[-1]:.4g}")
        S = add = None
        small = None
    if rho is not None and 0.0 < rho < 1.0:
        relax = -2.0 / math.log(rho)
    else:
        relax = (1.0 - momentum) / (lr * lam[0]) if lam[0] > 0 else 1000.0
    return BallTheory(label=label, sampling=sampling, c_b=c, stable=stable, radius=_radius(S), covariance=S,
                      radius_additive=_radius(add), radius_small_lr=small, lr_limit=limit, spectral_radius=rho,
                      relaxation_steps=relax, note="; ".join(notes))


class BallCache:
    """Predictions per (batch size, lr, momentum, sampling): computed once, never per step."""

    def __init__(self, model: QuadModel, size: int = 64):
        self.model, self.size = model, size
        self._cache: dict[tuple, BallTheory] = {}
        self._limits: dict[tuple, float | None] = {}     # the lr limit does not depend on lr
        self._shuffle_limits: dict[tuple, tuple[float, float] | None] = {}

    def get(self, batch_size: int, lr: float, momentum: float, sampling: str, drop_last: bool = False,
            with_limit: bool = False, quick: bool = False) -> BallTheory:
        """The prediction; ``with_limit``: under shuffle also the shuffled stability limit (``shuffled_ball``,
        a root search over lr: computed once per (B, momentum, drop_last), only where it is shown: when
        unstable, or above LIMIT_FROM times the iid limit); ``quick``:
        under shuffle fewer sampled permutations (a larger SE; the ball's law's curves), the same at every
        call."""
        key = (int(batch_size), float(lr), float(momentum), sampling, bool(drop_last) and sampling == "shuffle")
        quick = quick and sampling == "shuffle"
        if quick:
            key = key + ("quick",)
        hit = self._cache.pop(key, None)
        if hit is None:
            lkey = (key[0], key[2], "replacement" if sampling == "replacement" else "iid")
            hit = predict_ball(self.model, *key[:4], lr_limit=self._limits.get(lkey), drop_last=key[4], quick=quick)
            self._limits[lkey] = hit.lr_limit if hit.lr_limit_iid is None else hit.lr_limit_iid
        if with_limit and hit.epoch_rho is not None and hit.lr_limit is None and (
                not hit.stable or not hit.lr_limit_iid or key[1] > LIMIT_FROM * hit.lr_limit_iid):
            skey = (key[0], key[2], key[4])
            if skey not in self._shuffle_limits:
                self._shuffle_limits[skey] = shuffled_ball.shuffled_limit(self.model, hit, key[0], key[2], key[4])
            hit = shuffled_ball.with_limit(hit, key[1], self._shuffle_limits[skey])
        self._cache[key] = hit                     # most recent last
        while len(self._cache) > self.size:
            self._cache.pop(next(iter(self._cache)))
        return hit
