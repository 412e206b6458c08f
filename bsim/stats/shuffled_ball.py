"""The ball under shuffle sampling as bsim shows it: the sampled epoch map, the analytic approximation beside it.

The prediction is ``epoch_stationary``'s: the stationary moments of the random affine
epoch map, averaged over sampled permutations (computed numerically, with its
jackknife standard error), and stable exactly while rho(E[M kron M]) < 1 (the
shuffled limit, not the iid one). Beside it: the analytic approximation of
``reshuffled`` (the additive model over shuffled epochs times the iid ratio
exact / additive) and how far it is from the sampled one, and the iid limit.
Where the sampled computation does not fit ``epoch_map.BUDGET`` (or the model has
no per-example gradients, the softmax) the approximation is the prediction, with
the kind "reshuffled-approx" (linearised models keep the kind "linearised").
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from bsim.stats import epoch_limit, epoch_map, epoch_stationary
from bsim.stats import reshuffled as reshuffled_ball

#: the kind of the approximation when it is the prediction (the sampled one over budget)
APPROX_KIND = "reshuffled-approx"
#: the largest dimension whose position-averaged covariance is computed exactly (else the additive shape; quick
#: predictions, the curves' radii, skip it)
COV_MAX_DIM = 3


def shuffled(model, th, res, batch_size: int, lr: float, momentum: float, drop_last: bool, kind: str,
             notes: list[str], quick: bool = False):
    """The BallTheory under shuffle: ``th`` the iid prediction (its limit beside), ``res`` the analytic
    approximation (``reshuffled.predict``, None when the iid system is unstable or unsolved)."""
    em = model.epoch
    sampled = None
    if em is not None:
        sampled = epoch_stationary.predict(em, batch_size, lr, momentum, drop_last,
                                           cov=model.dim <= COV_MAX_DIM and not quick, quick=quick)
    approx_label = reshuffled_ball.LABEL
    if sampled is None:                               # the approximation alone, labelled so
        why = ("no per-example gradients at theta*" if em is None
               else f"the sampled prediction would exceed {epoch_map.BUDGET:.0e} flops")
        notes.append(f"approximation ({why})")
        if momentum:
            approx_label += "; momentum: the additive model on (theta, velocity), correction from the iid pair"
        if th.stable and res is None:
            notes.insert(0, "unstable: the mean map diverges at this lr")
        return replace(th, label=approx_label, kind=kind if kind != "reshuffled" else APPROX_KIND,
                       radius=None if res is None else res.radius,
                       covariance=None if res is None else res.covariance, stable=th.stable and res is not None,
                       radius_additive=None if res is None else res.radius_additive, radius_small_lr=None,
                       radius_iid=th.radius, correction=None if res is None else res.correction,
                       lr_limit=None, lr_limit_iid=th.lr_limit, limit_fraction=None,
                       radius_approx=None if res is None else res.radius, note="; ".join(notes))
    label = epoch_stationary.LABEL if model.label == "exact" else f"{model.label}, {epoch_stationary.LABEL}"
    if momentum:
        label += "; momentum: on (theta, velocity)"
    K = len(reshuffled_ball.epoch_batches(model.n, batch_size, drop_last))
    cov = None
    if sampled.stable:
        notes.append(f"{sampled.perms} sampled permutations, SE {sampled.radius_se:.2g}"
                     if sampled.radius_se is not None else f"{sampled.perms} sampled permutations")
        if res is not None and sampled.radius and res.radius:
            notes.append(f"the analytic approximation (additive model x iid correction) {res.radius:.4g} is "
                         f"{res.radius / sampled.radius - 1:+.1%} from it")
        if not th.stable:
            notes.append("above the iid limit: stable under shuffle")
        cov = sampled.covariance
        if cov is None and res is not None and res.covariance is not None:   # the additive model's shape
            tr = float(np.trace(res.covariance))
            cov = res.covariance * (sampled.mean_square / tr) if tr > 0 else None
    else:
        notes.insert(0, f"unstable: shuffled epochs diverge at this lr (epoch rho {sampled.rho:.4g})")
    relax = th.relaxation_steps
    if (th.spectral_radius is None or th.spectral_radius >= 1.0) and 0.0 < sampled.rho < 1.0:
        relax = -2.0 * K / math.log(sampled.rho)       # the iid operator does not relax: the epoch map does
    return replace(th, label=label, kind=kind, radius=sampled.radius if sampled.stable else None,
                   covariance=cov, stable=sampled.stable,
                   radius_additive=None if res is None else res.radius_additive, radius_small_lr=None,
                   radius_iid=th.radius, correction=None if res is None else res.correction,
                   lr_limit=None, lr_limit_iid=th.lr_limit, limit_fraction=None, relaxation_steps=relax,
                   radius_se=sampled.radius_se if sampled.stable else None,
                   radius_approx=None if res is None else res.radius, epoch_rho=sampled.rho,
                   epoch_rho_se=sampled.rho_se, perms=sampled.perms, note="; ".join(notes))


def shuffled_limit(model, th, batch_size: int, momentum: float, drop_last: bool) -> tuple[float, float] | None:
    """(the shuffled stability limit, its SE) for a sampled prediction ``th``; None where there is none."""
    em = model.epoch
    if em is None or th.epoch_rho is None:
        return None
    lam = float(np.linalg.eigvalsh(model.H)[-1])
    start = th.lr_limit_iid or (2.0 * (1.0 + momentum) / lam if lam > 0 else 1.0)
    return epoch_limit.limit(em, batch_size, momentum, drop_last, start)


def with_limit(th, lr: float, limit: tuple[float, float] | None):
    """``th`` with the shuffled limit in force: lr_limit, limit_fraction and the note say it."""
    if limit is None or th.epoch_rho is None:
        return th
    lim, se = limit
    iid = f"; the iid limit {th.lr_limit_iid:.4g}" if th.lr_limit_iid else ""
    note = f"shuffled limit {lim:.4g} ± {se:.2g}{iid}"
    note = th.note.replace("(epoch rho", f"(the {note}; epoch rho", 1) if not th.stable else \
        "; ".join(x for x in (th.note, note) if x)
    return replace(th, lr_limit=lim, lr_limit_se=se, limit_fraction=lr / lim if math.isfinite(lim) else None,
                   note=note)
