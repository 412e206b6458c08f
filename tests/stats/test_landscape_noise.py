"""tr(Sigma) on a landscape is exact (all N per-example gradients), never the two-batch estimate that went below 0
on `escape` at B = 4; checked against the per-example gradients written out here in NumPy."""

from __future__ import annotations

import math

import numpy as np
import torch

from bsim.scenario import parse_scenario
from bsim.simulation import Simulation

WELLS = ('seed = 3\n[problem]\nkind = "{kind}"\nn_train = 256\nbarriers = [0.4, 1.0]\ncurvatures = [4.0, 0.5]\n'
         'saddle_curvature = 2.0\ntilt_scale = 4.0\n[optimizer]\nlr = 0.05\nbatch_size = 4\nsampling = "replacement"\n')
NONUNIFORM = ('seed = 1\n[problem]\nkind = "nonuniform"\nn_train = 128\nsharpness = 1.0\nspreads = [3.0, 0.2]\n'
              '[optimizer]\nlr = 0.1\nbatch_size = 8\nsampling = "replacement"\n')


def run(text: str, steps: int, every: int = 50) -> tuple[Simulation, list]:
    torch.manual_seed(0)
    sim = Simulation(parse_scenario(text))
    frames = []
    for _ in range(steps // every):
        for _ in range(every):
            sim.step()
        frames.append(sim.frame())
    return sim, frames


def test_the_wells_trace_of_sigma_is_d_sigma_b_squared_at_every_step_and_the_measured_variance_agrees():
    """l_i = U + b_i . theta: g_i - G = b_i, so tr Sigma = sum over coordinates of the tilts' variance (1/N),
    whatever theta; c_B tr Sigma = tr Sigma / B with replacement, and the measured mean |g_B - G|^2 matches it."""
    for kind, d in (("wells", 1), ("wells2d", 2)):
        sim, frames = run(WELLS.format(kind=kind), 400, every=100)
        b = sim.problem.tilts64.reshape(256, d)
        exact = float(((b - b.mean(0)) ** 2).sum(1).mean())
        assert math.isclose(exact, 16.0 * d, rel_tol=1e-9)           # tilt_scale 4 per coordinate
        for f in frames:
            assert math.isclose(f.trace_sigma, exact, rel_tol=1e-9), (kind, f.step, f.trace_sigma)
            assert math.isclose(f.grad_noise_theory, exact / 4, rel_tol=1e-9)
            assert f.stats.trace_sigma_label.startswith("exact")
        point = next(p for p in frames[-1].stats.variance_measured if p.batch_size == 4)
        assert point.steps >= 45 and abs(point.grad_noise_mean - exact / 4) < 3 * point.grad_noise_se, point


def test_the_nonuniform_trace_of_sigma_is_the_spread_of_the_curvatures_times_the_squared_distance():
    """l_i = a_ik (theta - c_k)^2 / 2 on piece k: g_i = a_ik e, tr Sigma = Var_i(a_ik) e^2 (the piece and e from
    the period-4 landscape written out here), and B_simple = tr Sigma / |G|^2 = Var(a) / mean(a)^2."""
    sim, frames = run(NONUNIFORM, 300)
    a = sim.problem.curv64
    for f in frames:
        theta = f.theta[0]
        u = (theta + 2.0) % 4.0
        k, e = (0, u - 1.0) if u < 2.0 else (1, u - 3.0)
        g = a[:, k] * e                                  # every example's gradient, in a NumPy loop's terms
        exact = float(np.mean((g - g.mean()) ** 2))
        assert math.isclose(f.trace_sigma, exact, rel_tol=1e-9, abs_tol=1e-15), (f.step, f.trace_sigma, exact)
        if e != 0:
            assert math.isclose(f.noise_scale, a[:, k].var() / a[:, k].mean() ** 2, rel_tol=1e-9)
