"""EscapeMeter: which basin every chain is in, and how often chains leave the starting basin.

Attached to every Simulation (idle unless the problem is a landscape). Per step, on the
device and without a host read: each chain's *committed* basin (the last basin whose core it
reached: ``LandscapeProblem.core_of``), the chain-steps spent committed to the starting basin
(the exposure) and the escapes from it (a chain committed to the starting basin reaching
another basin's core). Both restart when the settings change (batch size, lr, momentum,
sampling), so the rate is that of the settings in force; the committed basins do not.

    escape_rate = escapes / exposure,  escape_rate_se = escape_rate / sqrt(escapes)

(the maximum-likelihood rate of a constant-rate process and its Poisson standard error).
At frame time: every chain's basin by the steepest-descent map (``bsim.landscape.basins``),
the fractions per basin, and the prediction (``bsim.landscape.theory``). Chain 0 is the run
itself; with an ensemble (--chains K) chains 1..K-1 follow, dropped (diverged) ones left out.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bsim.landscape.info import BasinInfo, LandscapeInfo
from bsim.landscape.theory import predict

#: the occupancy history keeps at most this many frames (every other one is dropped when full)
HISTORY = 512
#: points of the 1-D curve; the 2-D grid's columns and rows
CURVE_POINTS, GRID = 201, (61, 41)


class EscapeMeter:
    """Owns the chains' committed basins and the window's counts; reads the Simulation and its ensemble."""

    def __init__(self, sim):
        self.sim = sim
        self.problem = None
        self.key = None
        self.history: list[tuple[int, tuple[float, ...]]] = []
        sim.observers.append(self.observe)
        sim.frame_hooks.append(self.fill)

    # ---------------------------------------------------------------- state
    def _thetas(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(K, d) the run then every chain of the ensemble, and the alive mask (None: all alive)."""
        sim = self.sim
        ens = getattr(sim, "ensemble", None)
        run = sim.theta[None]
        if ens is None or not ens.active:
            return run, None
        alive = torch.cat([torch.ones(1, dtype=torch.bool, device=run.device), ens.alive])
        return torch.cat([run, ens.theta]), alive

    def _sync(self) -> bool:
        """Start again at a reset, a problem switch or a new ensemble; False when the problem is no landscape."""
        sim = self.sim
        p = sim.problem
        if not getattr(p, "landscape", False):
            self.problem = None
            return False
        ens = getattr(sim, "ensemble", None)
        key = (id(p), id(sim.sampler), id(ens), ens.chains if ens is not None and ens.active else 1)
        if key != self.key:
            self.key, self.problem = key, p
            theta, _ = self._thetas()
            with torch.no_grad():
                self.committed = p.basin_of(theta)
            self.history = [] if p is not getattr(self, "_history_problem", None) or sim.step_count == 0 \
                else self.history
            self._history_problem = p
            self._restart(None)
        return True

    def _restart(self, settings) -> None:
        dev = self.sim.theta.device
        self.settings = settings
        self.escapes = torch.zeros((), dtype=torch.long, device=dev)
        self.exposure = torch.zeros((), dtype=torch.long, device=dev)

    # ---------------------------------------------------------------- steps
    def observe(self, sim) -> None:
        if not self._sync():
            return
        if sim.observers[-1] != self.observe:     # after the ensemble's step (it may be rebuilt after us)
            sim.observers.remove(self.observe)
            sim.observers.append(self.observe)
            return                                 # the chains' step of this tick comes after: count the next
        settings = (sim.last_batch_size, sim.last_lr, sim.momentum, sim.sampling)
        if settings != self.settings:
            self._restart(settings)
        theta, alive = self._thetas()
        start = self.problem.start_basin
        with torch.no_grad():
            core = self.problem.core_of(theta)
            here = self.committed == start
            if alive is not None:
                here = here & alive
            self.exposure += here.sum()
            self.escapes += (here & (core >= 0) & (core != start)).sum()
            self.committed = torch.where(core >= 0, core, self.committed)

    # ---------------------------------------------------------------- frames
    def fill(self, sim, frame) -> None:
        if not self._sync():
            return
        p = self.problem
        theta, alive = self._thetas()
        with torch.no_grad():
            basin = p.basin_of(theta)
            committed = self.committed
        keep = alive.cpu().numpy() if alive is not None else np.ones(theta.shape[0], dtype=bool)
        basin_np = basin.cpu().numpy()[keep]
        positions = theta.double().cpu().numpy()[keep]
        k = max(len(basin_np), 1)
        occupancy = tuple(float((basin_np == b.index).sum()) / k for b in p.basins)
        escaped = int((committed.cpu().numpy()[keep] != p.start_basin).sum())
        escapes, exposure = int(self.escapes), int(self.exposure)
        rate = escapes / exposure if exposure else None
        se = rate / math.sqrt(escapes) if escapes else None
        settings = self.settings or (sim.batch_size, sim.lr, sim.momentum, sim.sampling)
        pred = predict(p, *settings)
        if not self.history or self.history[-1][0] != sim.tick:
            self.history.append((sim.tick, occupancy))
            if len(self.history) > HISTORY:
                self.history = self.history[::2]
        rhos = pred.rhos or (None,) * len(p.basins)
        basins = tuple(BasinInfo(b.index, b.label, b.minimum, b.loss, b.curvature, b.depth, b.spread, rhos[i],
                                 None if rhos[i] is None else rhos[i] <= 1, occupancy[i])
                       for i, b in enumerate(p.basins))
        curve, grid = self._drawing()
        frame.landscape = LandscapeInfo(
            kind=p.kind, dim=p.dim, x_range=p.x_range, y_range=p.y_range, curve=curve, grid=grid, basins=basins,
            saddles=p.saddles, saddle_curvature=getattr(p, "ks", None), positions=positions, chain_basin=basin_np,
            start_basin=p.start_basin, occupancy=occupancy, history=tuple(self.history), escaped=escaped,
            escapes=escapes, exposure=exposure, escape_rate=rate, escape_rate_se=se, escape_rate_theory=pred.rate,
            escape_theory=pred.kind, theory_note=pred.note, temperature=pred.temperature,
            barrier_over_t=pred.barrier_over_t)
        frame.basin_0_frac, frame.basin_1_frac = occupancy[0], occupancy[1]
        frame.escaped, frame.escape_rate, frame.escape_rate_se = escaped, rate, se
        frame.escape_rate_theory, frame.escape_theory = pred.rate, pred.kind

    def _drawing(self):
        """The 1-D curve or the 2-D grid of the full loss (computed once per problem)."""
        p = self.problem
        cached = getattr(self, "_drawn", None)
        if cached is not None and cached[0] is p:
            return cached[1], cached[2]
        x0, x1 = p.x_range
        if p.dim == 1:
            xs = np.linspace(x0, x1, CURVE_POINTS)
            curve, grid = (tuple(xs.tolist()), tuple(p.full_loss_numpy(xs[:, None]).tolist())), None
        else:
            (nx, ny), (y0, y1) = GRID, p.y_range
            gx, gy = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))
            pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
            curve, grid = None, p.full_loss_numpy(pts).reshape(ny, nx)
        self._drawn = (p, curve, grid)
        return curve, grid


def attach(sim) -> EscapeMeter:
    return EscapeMeter(sim)
