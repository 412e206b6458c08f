"""What the landscape panel reads of a frame, in one place: ``frame.landscape`` (bsim.landscape.info).

``picture(f)`` and ``readings(f)`` are the only readers of the frame's landscape; the panels
(bsim.app.widgets.landscape, the race's lanes) draw from what they return. Nothing is computed here:
the loss on its curve or grid, the basins (by the steepest-descent map of the full loss), the
occupancy and its history, the escape rate and its prediction all come with the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the colour of each basin by its label; others take the next of OTHER_COLORS
BASIN_COLORS = {"sharp": "red", "flat": "green", "non-uniform": "red", "uniform": "green"}
OTHER_COLORS = ("blue", "orange", "yellow", "pink")
#: how each kind of prediction is written on screen (escape_theory -> its label)
THEORY_LABELS = {"kramers": "Kramers approx.", "stability": "stability (iid)", "none": "none"}
#: the same, short, before the number, for a narrow panel ("≈": an approximation)
SHORT_THEORY_LABELS = {"kramers": "Kramers≈", "stability": "stab.(iid)", "none": "theory: none"}


@dataclass(frozen=True)
class Basin:
    """One basin as drawn: its label (sharp / flat), its minimum, the loss's largest curvature there, and
    for the non-uniform minima the linear-stability factor rho (SGD can stay iff rho <= 1)."""

    name: str
    center: tuple[float, ...]
    curvature: float
    color: str
    rho: float | None = None


@dataclass(frozen=True)
class Picture:
    """The landscape of a frame as the panel draws it: dimension, box, the full loss and its basins.

    ``curve``: (xs, U) at points over the box (1-D); ``grid``: U on a (ny, nx) grid over the box, row 0 at
    the bottom (2-D).
    """

    dim: int
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    curve: tuple[np.ndarray, np.ndarray] | None
    grid: np.ndarray | None
    basins: tuple[Basin, ...]
    saddles: tuple[tuple[float, ...], ...]
    start: int


@dataclass(frozen=True)
class Readings:
    """A frame's occupancy and escape numbers (None: not measured yet)."""

    fractions: tuple[float, ...]          # of the chains in each basin, in the order of Picture.basins
    chains: int                           # K (1: the run alone)
    positions: np.ndarray | None          # (K, d): row 0 is the run
    left: int | None                      # chains that left the starting basin
    rate: float | None                    # escapes per chain-step survived, measured
    se: float | None                      # its standard error
    exposure: int | None                  # the chain-steps survived behind it
    theory: float | None                  # the predicted rate
    kind: str                             # kramers | stability | none
    note: str                             # which approximation, and whether its regime holds
    history: tuple                        # ((tick, (frac_0, frac_1, ...)), ...), oldest first


def picture(f) -> Picture | None:
    """The frame's landscape, None for every other problem."""
    land = getattr(f, "landscape", None) if f is not None else None
    if land is None:
        return None
    basins = tuple(Basin(str(b.label), tuple(float(v) for v in b.minimum), float(max(b.curvature)),
                         BASIN_COLORS.get(str(b.label), OTHER_COLORS[k % len(OTHER_COLORS)]),
                         None if b.rho is None else float(b.rho))
                   for k, b in enumerate(land.basins))
    lo, hi = (land.x_range[0],), (land.x_range[1],)
    if land.dim == 2 and land.y_range is not None:
        lo, hi = lo + (land.y_range[0],), hi + (land.y_range[1],)
    curve = None
    if land.curve is not None:
        curve = (np.asarray(land.curve[0], dtype=float), np.asarray(land.curve[1], dtype=float))
    grid = None if land.grid is None else np.asarray(land.grid, dtype=float)
    return Picture(int(land.dim), lo, hi, curve, grid, basins,
                   tuple(tuple(float(v) for v in s) for s in land.saddles), int(land.start_basin))


def readings(f) -> Readings | None:
    """The frame's occupancy and escape rate; None for problems without a landscape."""
    land = getattr(f, "landscape", None) if f is not None else None
    if land is None:
        return None
    pos = None if land.positions is None else np.asarray(land.positions, dtype=float)
    return Readings(tuple(float(v) for v in land.occupancy), len(pos) if pos is not None else int(f.chains or 1),
                    pos, land.escaped, land.escape_rate, land.escape_rate_se, land.exposure, land.escape_rate_theory,
                    land.escape_theory or "none", land.theory_note or "", tuple(land.history or ()))


def theory_label(kind: str, short: bool = False) -> str:
    """How a prediction of ``kind`` (escape_theory) is labelled on screen."""
    return (SHORT_THEORY_LABELS if short else THEORY_LABELS).get(kind, kind)


def occupancy_series(r: Readings) -> tuple[np.ndarray, np.ndarray] | None:
    """(ticks, fractions (n, basins)) of the occupancy history, None below two points."""
    rows = [(t, *fr) for t, fr in r.history if fr is not None and len(fr)]
    if len(rows) < 2:
        return None
    width = min(len(row) for row in rows)
    a = np.array([row[:width] for row in rows], dtype=float)
    return a[:, 0], a[:, 1:]
