"""The predictions: Kramers' escape time over a barrier, and the linear stability of a minimum.

Tilted wells (bsim.problems.wells). The batch noise is the mean of B tilts: covariance c_B
sigma_b^2 I, whatever theta. For small lr, SGD is the Langevin dynamics
d theta = -grad U dt + sqrt(2 T) dW with time t = lr x steps and T = lr c_B sigma_b^2 / 2.
Kramers (1940; Langer 1969 in d dimensions) gives the mean time to go over the saddle and
down the other side, in steps:

    n(B, lr) = 2 pi / (lr sqrt(U''(min) |U''(saddle)|)) sqrt(kappa(saddle) / kappa(min)) exp(dU / T),

kappa the curvature across the path (2-D; 1 in 1-D). An approximation: the barrier must be
several T (corrections of order T / dU) and lr U'' small (the continuous-time limit); it is
for iid batches (shuffled epochs correlate successive batches) and no momentum. log n is
linear in 1 / (lr c_B): equal lr c_B gives equal rates.

Non-uniform minima (bsim.problems.nonuniform, Wu, Ma & E 2018): E e^2 is multiplied by
rho = (1 - lr a)^2 + lr^2 s^2 c_B each step (iid batches, exact for the quadratics). It is
a criterion (stays iff rho <= 1), not a rate; what is put in the rate's place is
1 / t* with t* = ln(d^2 / e_0^2) / ln(rho), the steps for the predicted RMS deviation
sqrt(rho^t) e_0 to grow from the start offset e_0 to the basin's edge d = 1 (0 when rho <= 1):
an order of magnitude. It covers the mean square; a typical chain grows only when
E ln|1 - lr a_B| > 0, so just above rho = 1 most chains still stay (README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bsim.stats.cfactor import c_factor

#: Kramers' regime: a barrier of at least this many T
MIN_BARRIER_T = 5.0
#: and lr times the largest curvature at most this (the continuous-time limit)
MAX_LR_CURVATURE = 0.2


def temperature(lr: float, c_b: float, sigma2: float) -> float:
    """T = lr c_B sigma_b^2 / 2: the temperature of the tilted wells' SGD (time unit lr)."""
    return 0.5 * lr * c_b * sigma2


def kramers_steps(depth: float, k_min: float, k_saddle: float, lr: float, temp: float, factor: float = 1.0) -> float:
    """Kramers' mean number of steps to escape: 2 pi / (lr sqrt(k_min k_saddle)) factor exp(depth / T) (inf at T = 0)."""
    if temp <= 0:
        return math.inf
    exponent = depth / temp
    if exponent > 700:
        return math.inf
    return 2 * math.pi / (lr * math.sqrt(k_min * k_saddle)) * factor * math.exp(exponent)


@dataclass(frozen=True)
class Prediction:
    rate: float | None          # escapes per chain-step predicted (None: no prediction)
    kind: str                   # kramers | stability | none
    note: str                   # which approximation, and whether its regime holds
    temperature: float | None = None
    barrier_over_t: float | None = None
    rhos: tuple[float, ...] | None = None


def predict(problem, batch_size: int, lr: float, momentum: float, sampling: str) -> Prediction:
    """The prediction for the problem's starting basin at these settings."""
    if momentum:
        return Prediction(None, "none", "no prediction with momentum (the theories are for plain SGD)")
    c_b = c_factor(problem.n_train, min(batch_size, problem.n_train), sampling)
    noise = "iid batches" if sampling != "shuffle" else "iid batches assumed (shuffle: an approximation)"
    basin = problem.basins[problem.start_basin]
    if problem.kind == "nonuniform":
        rhos = tuple(problem.rho(k, lr, c_b) for k in range(len(problem.basins)))
        rho = rhos[problem.start_basin]
        e0 = abs(problem.start_offset)
        if rho <= 1 or e0 <= 0 or e0 >= 1:
            rate = 0.0
        else:
            rate = math.log(rho) / math.log(1.0 / e0 ** 2)
        verdict = "stays" if rho <= 1 else "leaves"
        return Prediction(rate, "stability", f"linear stability, Wu, Ma & E 2018 ({noise}): rho = {rho:.3g} "
                          f"{'<=' if rho <= 1 else '>'} 1, SGD {verdict}; the rate is 1/(steps for sqrt(rho^t) e0 to "
                          f"reach the edge), an order of magnitude", rhos=rhos)
    temp = temperature(lr, c_b, problem.sigma2)
    if temp <= 0:
        return Prediction(0.0, "kramers", "Kramers: T = 0 at B = N (no noise): no escape", 0.0, None)
    n = kramers_steps(basin.depth, basin.curvature[0], problem.ks, lr, temp, problem.saddle_factor(problem.start_basin))
    ratio = basin.depth / temp
    lr_k = lr * max(problem.max_curvature, problem.ks)
    ok = ratio >= MIN_BARRIER_T and lr_k <= MAX_LR_CURVATURE
    regime = "in its regime" if ok else "OUTSIDE its regime"
    note = (f"Kramers approx. ({noise}), {regime}: barrier {ratio:.3g} T (needs >= {MIN_BARRIER_T:g} T), "
            f"lr U'' = {lr_k:.2g} (needs <= {MAX_LR_CURVATURE:g})")
    return Prediction(0.0 if math.isinf(n) else 1.0 / n, "kramers", note, temp, ratio)
