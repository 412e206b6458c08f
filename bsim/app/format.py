"""Numbers for narrow panels: three significant digits, thin units, no wall-clock text."""

from __future__ import annotations

import math

_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _sig(v: float, digits: int) -> str:
    """v (1 <= |v| < 1000) with at most ``digits`` significant digits, never in exponent form."""
    lead = int(math.floor(math.log10(abs(v)))) + 1      # digits before the point: 1, 2 or 3
    decimals = max(digits - lead, 0)
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def num(v, digits: int = 3) -> str:
    """A compact number: 0.0123, 1.23e-05, 12.3, 1.23k, 150k, 4.56M, 5.4e+153; '—' for None.

    Above 1000 a unit (k, M, G, T) keeps the mantissa below 1000 and never in
    exponent form ("150k", not "1.5e+02k"); beyond 1e15 plain scientific notation.
    """
    if v is None:
        return "—"
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e15:
        return f"{v:.{max(digits - 1, 1)}e}"
    if a >= 1e4:
        for scale, unit in reversed(_UNITS):          # k, M, G, T
            text = _sig(v / scale, digits)
            if abs(float(text)) < 1000 or unit == "T":  # 999.96k is 1M
                return text + unit
    if a >= 10 ** digits:
        return f"{v:.0f}"
    if a >= 1:
        return _sig(v, digits)
    if a >= 1e-3:
        return f"{v:.{digits}g}"
    return f"{v:.{max(digits - 1, 1)}e}".replace("e-0", "e-")


def count(v) -> str:
    """An integer with thousands separators."""
    return "—" if v is None else f"{int(v):,}"


def rate(v, unit: str) -> str:
    """A rate such as '24.3k steps/s'; '—' when not measured (paused, or frozen for tests)."""
    if v is None or not math.isfinite(v):
        return "—"
    return f"{num(v)} {unit}"


def noise_scale_text(value, n_train: int) -> tuple[str, bool]:
    """B_simple as the panels show it, and whether noise dominates: past N (a batch of the whole
    training set still sees mostly noise: |G|^2 -> 0 near the optimum, so B_simple grows without
    bound) it reads "> N" rather than a number that jumps 529 -> 217k from frame to frame."""
    if value is not None and n_train > 0 and value > n_train:
        return f"> N = {count(n_train)}", True
    return num(value), False


def ratio_text(measured: float, se: float | None, predicted: float) -> str:
    """" ×0.95 ± 0.04": measured / predicted with its standard error, ratio se / measured (the prediction
    taken as exact: exact theory, or labelled by its approximation); " ×… settling" while se is None."""
    if se is None:
        return " ×… settling"
    ratio = measured / predicted
    return f" ×{ratio:.2f} ± {num(ratio * se / measured, 1)}"
