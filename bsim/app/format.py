"""Numbers for narrow panels: three significant digits, thin units, no wall-clock text."""

from __future__ import annotations

import math


def num(v, digits: int = 3) -> str:
    """A compact number: 0.0123, 1.23e-05, 12.3, 1.23k, 4.56M; '—' for None, 'nan'/'inf' as such."""
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
    if a >= 1e6:
        return f"{v / 1e6:.{digits}g}M"
    if a >= 1e4:
        return f"{v / 1e3:.{digits}g}k"
    if a >= 10 ** digits:
        return f"{v:.0f}"
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
