"""A hand-made frame.landscape (the fields of bsim.landscape.info.LandscapeInfo) for the panel's tests: a
sharp and a flat well, chains placed by the test, the sharp basin emptying over 20 frames."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np

from bsim.app.history import FrameBuffer
from bsim.frame import Frame

XS = np.linspace(-2.0, 3.0, 201)


def double_well(x):
    """A sharp well at -1 (curvature 8) and a flat one at 1.5 (curvature 1), the saddle near 0."""
    return np.minimum(4 * (x + 1) ** 2 - 0.4, 0.5 * (x - 1.5) ** 2 - 1.0)


def frame(theta, history, *, rate=1.2e-3, se=2e-4, theory=1.5e-3, kind="kramers", step=1000, b=4,
          note="Kramers approx. (barrier 6.1 T; valid for barrier >= 5 T, lr U'' << 1)"):
    theta = np.asarray(theta, dtype=float).reshape(-1, 1)
    occ = (float(np.mean(theta[:, 0] < 0)), float(np.mean(theta[:, 0] >= 0)))
    basins = (NS(index=0, label="sharp", minimum=(-1.0,), loss=-0.4, curvature=(8.0,), depth=0.4, spread=None,
                 rho=None, stable=None, occupancy=occ[0]),
              NS(index=1, label="flat", minimum=(1.5,), loss=-1.0, curvature=(1.0,), depth=1.0, spread=None,
                 rho=None, stable=None, occupancy=occ[1]))
    land = NS(kind="wells", dim=1, x_range=(-2.0, 3.0), y_range=None, curve=(tuple(XS), tuple(double_well(XS))),
              grid=None, basins=basins, saddles=((0.0,),), saddle_curvature=2.0, positions=theta,
              chain_basin=(theta[:, 0] >= 0).astype(int), start_basin=0, occupancy=occ, history=tuple(history),
              escaped=int(round(occ[1] * len(theta))), escape_rate=rate, escape_rate_se=se, escapes=36,
              exposure=30000, escape_rate_theory=theory, escape_theory=kind, theory_note=note,
              temperature=0.07, barrier_over_t=6.1)
    f = Frame(step=step, tick=step, theta=(float(theta[0, 0]),), chains=len(theta), next_batch_size=b,
              batch_size=b, problem="wells")
    f.landscape = land
    return f


def fed(theta, **kw) -> FrameBuffer:
    """A FrameBuffer fed 20 frames, the last one with the chains at ``theta``; the sharp basin emptying."""
    h = FrameBuffer()
    hist = []
    for k in range(1, 21):
        hist.append((50 * k, (1 - k / 40, k / 40)))
        h.add(frame(theta, hist, step=50 * k, **kw))
    return h
