"""The landscapes' [problem] keys and their checks (imported by bsim.scenario; no torch).

A bad landscape is refused in one line naming the file, line and key: a barrier <= 0, a
curvature <= 0, two minima that do not differ (equal curvatures: no sharp and flat; equal
spreads: no non-uniform one), tilts that do not average to zero (the full loss would not be
U and the noise not of mean zero), a key of another kind.
"""

from __future__ import annotations

import math

from bsim.errors import BsimInputError, quote
from bsim.tomlcheck import plain_num, where

LANDSCAPES = ("wells", "wells2d", "nonuniform")
WELLS_KEYS = ("barriers", "curvatures", "saddle_curvature", "tilt_scale", "tilts")
NONUNIFORM_KEYS = ("sharpness", "spreads", "start_offset")
#: the most tilts a scenario may list (a bigger set belongs to the generated tilts: n_train and tilt_scale)
MAX_TILTS = 100_000
#: tilts average to zero when |mean| <= this times their largest size
TILT_TOLERANCE = 1e-9


def _finite(v) -> bool:
    return plain_num(v) and math.isfinite(v)


def _two_positive(v) -> bool:
    return len(v) == 2 and all(_finite(x) and x > 0 for x in v)


def _two_nonneg(v) -> bool:
    return len(v) == 2 and all(_finite(x) and x >= 0 for x in v)


def _tilts(v) -> bool:
    if not 2 <= len(v) <= MAX_TILTS:
        return False
    if all(_finite(x) for x in v):
        return True
    return all(isinstance(x, list) and len(x) == 2 and all(_finite(c) for c in x) for x in v)


LANDSCAPE_RULES = {
    "barriers": ((list,), _two_positive, "two numbers > 0: the barriers (depths) of basin 0 and basin 1"),
    "curvatures": ((list,), _two_positive, "two numbers > 0: U'' at the minimum of basin 0 and of basin 1"),
    "saddle_curvature": ((int, float), lambda v: math.isfinite(v) and v > 0, "a number > 0: |U''| at the saddle"),
    "tilt_scale": ((int, float), lambda v: math.isfinite(v) and v > 0, "a number > 0: sigma_b, the tilts' spread"),
    "tilts": ((list,), _tilts, f"a list of 2 to {MAX_TILTS:,} finite numbers (wells2d: [x, y] pairs) of mean zero"),
    "sharpness": ((int, float), lambda v: math.isfinite(v) and v > 0, "a number > 0: the mean curvature of both minima"),
    "spreads": ((list,), _two_nonneg, "two numbers >= 0: the spread of the per-example curvatures at each minimum"),
    "start_basin": ((int,), lambda v: v in (0, 1), "0 or 1: the basin the chains start in"),
    "start_offset": ((int, float), lambda v: math.isfinite(v) and 0 < abs(v) < 1,
                     "a number with 0 < |offset| < 1: the start's distance from the minimum"),
}


def check_landscape(sc, fname: str, loc) -> None:
    """The checks across keys (the types and ranges are LANDSCAPE_RULES')."""
    p = sc.problem
    def at(key):
        return where(fname, loc, "problem", key)
    own = {"wells": WELLS_KEYS, "wells2d": WELLS_KEYS, "nonuniform": NONUNIFORM_KEYS}.get(p.kind, ())
    for key in WELLS_KEYS + NONUNIFORM_KEYS + ("start_basin",):
        if getattr(p, key) is not None and key not in own and not (key == "start_basin" and p.kind in LANDSCAPES):
            kinds = "wells and wells2d" if key in WELLS_KEYS else ("nonuniform" if key in NONUNIFORM_KEYS else
                                                                   ", ".join(LANDSCAPES))
            raise BsimInputError(f"{at(key)}: got {quote(getattr(p, key))} for kind {quote(p.kind)}; expected it only "
                                 f"with kind {kinds}")
    if p.kind not in LANDSCAPES:
        return
    if p.curvatures is not None and p.curvatures[0] == p.curvatures[1]:
        raise BsimInputError(f"{at('curvatures')}: got equal minima {quote(p.curvatures)}; expected two different "
                             f"curvatures (a sharp and a flat basin)")
    if p.spreads is not None and p.spreads[0] == p.spreads[1]:
        raise BsimInputError(f"{at('spreads')}: got equal minima {quote(p.spreads)}; expected two different spreads "
                             f"(a non-uniform and a uniform minimum of equal sharpness)")
    if p.tilts is not None:
        rows = [x if isinstance(x, list) else [x] for x in p.tilts]
        d = 2 if p.kind == "wells2d" else 1
        if any(len(r) != d for r in rows):
            raise BsimInputError(f"{at('tilts')}: got {quote(p.tilts)}; expected {'[x, y] pairs' if d == 2 else 'numbers'}"
                                 f" for kind {p.kind}")
        if p.tilt_scale is not None:
            raise BsimInputError(f"{at('tilt_scale')}: got {quote(p.tilt_scale)} with tilts; expected one of them "
                                 f"(tilt_scale sets the spread of generated tilts)")
        scale = max(abs(c) for r in rows for c in r)
        means = [math.fsum(r[j] for r in rows) / len(rows) for j in range(d)]
        if scale == 0 or max(abs(m) for m in means) > TILT_TOLERANCE * scale:
            raise BsimInputError(f"{at('tilts')}: the tilts average to {', '.join(f'{m:.3g}' for m in means)}, not 0; "
                                 f"expected tilts of mean zero, not all zero (subtract their mean)")
