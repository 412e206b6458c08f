"""How lr follows the batch size: the one rule that the app's lr scaling and the sweep's lr rules share.

lr(B) = lr0 * factor(B / B0), where lr0 and B0 are the base lr and batch size:
- none:   factor 1
- linear: factor B / B0          (Goyal et al. 2017)
- sqrt:   factor sqrt(B / B0)    (Krizhevsky 2014; Hoffer et al. 2017)
"""

from __future__ import annotations

import math

#: the lr scalings (a scenario's lr_scaling, the race's and the sweep's lr rules); bsim.scenario re-exports them
LR_SCALINGS = ("none", "linear", "sqrt")


def scaling_factor(mode: str, batch_size: int, base_batch_size: int) -> float:
    """lr multiplier: 1 (none), B/B0 (linear, Goyal et al.), sqrt(B/B0) (square root)."""
    ratio = batch_size / base_batch_size
    return {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[mode]


def scaled_lr(mode: str, base_lr: float, batch_size: int, base_batch_size: int) -> float:
    """lr0 * factor: the lr a batch size is trained with under ``mode`` (a sweep task's lr).

    Linear is rounded as lr0 * B / B0, in that order: a sweep CSV keys its rows by the lr's repr,
    so another rounding would not resume a sweep written before.
    """
    if mode == "linear":
        return base_lr * batch_size / base_batch_size
    return base_lr * scaling_factor(mode, batch_size, base_batch_size)
