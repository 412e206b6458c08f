"""What the landscape measurement puts into a frame (frame.landscape) for the views; plain values, no torch.

See bsim.landscape.escape for how each is measured and bsim.landscape.theory for the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BasinInfo:
    """One basin of the full loss, as drawn: where, how sharp, how deep, and how full now."""

    index: int
    label: str                       # sharp / flat (wells); non-uniform / uniform (nonuniform)
    minimum: tuple[float, ...]
    loss: float                      # L at the minimum
    curvature: tuple[float, ...]     # Hessian eigenvalues of L at the minimum
    depth: float                     # L(saddle) - L(minimum)
    spread: float | None             # nonuniform: std of the per-example curvatures a_ik
    rho: float | None                # nonuniform: (1 - lr a)^2 + lr^2 s_k^2 c_B at the settings in force
    stable: bool | None              # nonuniform: rho <= 1
    occupancy: float                 # fraction of the chains in it now


@dataclass(frozen=True)
class LandscapeInfo:
    """The landscape, the chains on it, and the escape from the starting basin: measured and predicted.

    curve (1-D): (xs, L(xs)) at 201 points over x_range. grid (2-D): numpy (ny, nx) of L over
    x_range x y_range (row j: y = y0 + j (y1 - y0)/(ny - 1), as Problem.loss_grid). positions: numpy
    (K, d), row 0 the run; chain_basin: numpy (K,) ints by the steepest-descent map. history:
    (tick, occupancy) at past frames, oldest first. escape_rate: escapes per chain-step survived in
    the starting basin since the settings in force began (escapes / exposure); its standard
    error rate / sqrt(escapes) (Poisson; None with no escape).
    """

    kind: str
    dim: int
    x_range: tuple[float, float]
    y_range: tuple[float, float] | None
    curve: tuple[tuple[float, ...], tuple[float, ...]] | None
    grid: object
    basins: tuple[BasinInfo, ...]
    saddles: tuple[tuple[float, ...], ...]
    saddle_curvature: float | None
    positions: object
    chain_basin: object
    start_basin: int
    occupancy: tuple[float, ...]
    history: tuple[tuple[int, tuple[float, ...]], ...]
    escaped: int
    escapes: int
    exposure: int
    escape_rate: float | None
    escape_rate_se: float | None
    escape_rate_theory: float | None
    escape_theory: str               # kramers | stability | none
    theory_note: str
    temperature: float | None
    barrier_over_t: float | None
