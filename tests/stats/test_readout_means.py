"""The smoothed readouts (issue 18): B_simple as a ratio of means over the last steps, cos(g_B, G) with
its running mean, checked against a plain NumPy loop over all N per-example gradients at each step's
parameters. The CSV's noise_scale and cos_to_full stay the step's own values."""

from __future__ import annotations

import numpy as np
import pytest

from support import linreg_100
from bsim.simulation import Simulation
from bsim.stats.exact import NOISE_SCALE_WINDOW



def test_b_simple_and_cos_means_against_numpy():
    sim = Simulation(linreg_100(3, 10))
    X, y = np.asarray(sim.problem.X64, dtype=float), np.asarray(sim.problem.y64, dtype=float)
    seen = []
    sim.observers.append(lambda s: seen.append((s.last_theta.double().numpy().copy(),
                                                s.last_grad.double().numpy().copy())))
    for _ in range(600):
        sim.step()
    f = sim.frame(timing=False)
    trace, g2, cos = [], [], []
    for theta, g in seen:
        per = X * (X @ theta - y)[:, None]         # per-example gradients of (1/2N)|X theta - y|^2
        G = per.mean(0)
        trace.append(((per - G) ** 2).sum(1).mean())
        g2.append(G @ G)
        cos.append(g @ G / (np.linalg.norm(g) * np.linalg.norm(G)))
    last = slice(-NOISE_SCALE_WINDOW, None)
    assert f.stats.noise_scale_window == NOISE_SCALE_WINDOW
    assert f.stats.noise_scale_smoothed == pytest.approx(np.mean(trace[last]) / np.mean(g2[last]), rel=1e-6)
    assert f.noise_scale == pytest.approx(trace[-1] / g2[-1], rel=1e-6)          # the CSV's: the step's own
    assert f.stats.cos_to_full_window == NOISE_SCALE_WINDOW
    assert f.stats.cos_to_full_mean == pytest.approx(np.mean(cos[last]), abs=1e-9)
    assert f.cos_to_full == pytest.approx(cos[-1], abs=1e-9)
    # near theta* one step's cosine swings over [-1, 1] while the mean stays between
    assert np.ptp(cos[last]) > 1.0
    assert abs(f.stats.cos_to_full_mean) < 0.6
