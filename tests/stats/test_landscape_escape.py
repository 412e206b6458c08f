"""Escapes measured by bsim against an independent NumPy loop of SGD chains, and against the theories (issue 20).

The reference below is plain NumPy over the same per-example losses (the problem's tilts or
curvatures): l_i = U(theta) + b_i theta with U written out here, one step
theta -= lr (U'(theta) + mean of the batch's b_i) per chain, batches of B drawn with replacement. It
counts an escape as bsim documents it: a chain committed to the starting basin reaching the other
basin's core (U at most half that basin's depth below the saddle, on its side), per chain-step spent
committed to the starting basin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim.scenario import parse_scenario
from bsim.simulation import Simulation

pytestmark = pytest.mark.slow

K0, K1, KS, SIGMA = 4.0, 0.5, 2.0, 4.0


def wells(barrier0: float, B: int, lr: float, chains: int, kind: str = "wells") -> str:
    return (f'seed = 3\nchains = {chains}\n[problem]\nkind = "{kind}"\nn_train = 1024\nbarriers = [{barrier0}, 1.0]\n'
            f'curvatures = [{K0}, {K1}]\nsaddle_curvature = {KS}\ntilt_scale = {SIGMA}\n'
            f'[optimizer]\nlr = {lr}\nbatch_size = {B}\nsampling = "replacement"\n')


def run_bsim(text: str, steps: int):
    torch.manual_seed(0)
    sim = Simulation(parse_scenario(text), stats=False)
    for _ in range(steps):
        sim.step()
    return sim, sim.frame()


def reference_rate(tilts: np.ndarray, d0: float, B: int, lr: float, chains: int, steps: int, seed: int):
    """(escapes per chain-step survived, its Poisson se) of a plain NumPy ensemble on the 1-D tilted wells."""
    d1 = 1.0
    m0, m1 = -math.sqrt(2 * d0 * (K0 + KS) / (K0 * KS)), math.sqrt(2 * d1 * (K1 + KS) / (K1 * KS))
    x0, x1 = m0 * K0 / (K0 + KS), m1 * K1 / (K1 + KS)

    def U(t):
        return np.where(t < x0, -d0 + K0 * (t - m0) ** 2 / 2, np.where(t > x1, -d1 + K1 * (t - m1) ** 2 / 2, -KS * t * t / 2))

    def dU(t):
        return np.where(t < x0, K0 * (t - m0), np.where(t > x1, K1 * (t - m1), -KS * t))

    rng = np.random.default_rng(seed)
    b = tilts[:, 0]
    theta = np.full(chains, m0)
    committed = np.zeros(chains, dtype=int)
    escapes = exposure = 0
    for _ in range(steps):
        theta = theta - lr * (dU(theta) + b[rng.integers(len(b), size=(chains, B))].mean(1))
        u = U(theta)
        core0, core1 = (theta < 0) & (u <= -d0 / 2), (theta > 0) & (u <= -d1 / 2)
        home = committed == 0
        exposure += int(home.sum())
        escapes += int((home & core1).sum())
        committed = np.where(core1, 1, np.where(core0, 0, committed))
    return escapes / exposure, math.sqrt(escapes) / exposure


@pytest.mark.parametrize("B, lr", [(4, 0.05), (6, 0.05), (4, 0.08), (6, 0.08)])
def test_the_measured_escape_rate_agrees_with_a_numpy_loop_of_sgd_chains(B, lr):
    sim, f = run_bsim(wells(0.3, B, lr, 512), 1500)
    ref, ref_se = reference_rate(sim.problem.tilts64, 0.3, B, lr, 512, 1500, seed=B * 1000 + int(lr * 100))
    assert f.landscape.escapes >= 100
    assert abs(f.escape_rate - ref) <= 3 * math.hypot(f.escape_rate_se, ref_se), (f.escape_rate, ref)


def kramers_steps(depth, k_min, k_saddle, lr, temperature, across=1.0):
    """Kramers (Langer in 2-D) in steps, written out here: 2 pi / (lr sqrt(k_min k_s)) across exp(depth / T)."""
    return 2 * math.pi / (lr * math.sqrt(k_min * k_saddle)) * across * math.exp(depth / temperature)


@pytest.mark.parametrize("kind", ["wells", "wells2d"])
def test_kramers_predicts_the_escape_rate_within_30_percent_at_a_barrier_of_5_T(kind):
    B, lr, depth = 2, 0.025, 0.5
    T = lr * SIGMA**2 / (2 * B)                 # c_B = 1/B with replacement: T = 0.1, the barrier 5 T
    assert depth / T == pytest.approx(5.0) and lr * K0 <= 0.2
    sim, f = run_bsim(wells(depth, B, lr, 1024, kind), 3000)
    across = 1.0
    if kind == "wells2d":    # the curvature across the path at the saddle and at the minimum (kappa of the docstring)
        p = sim.problem
        kappa = lambda x: K0 + (K1 - K0) / (1 + math.exp(-x / p.width))   # noqa: E731
        across = math.sqrt(kappa(0.0) / kappa(p.basins[0].minimum[0]))
    predicted = 1 / kramers_steps(depth, K0, KS, lr, T, across)
    assert f.landscape.escapes >= 150
    assert f.escape_rate == pytest.approx(predicted, rel=0.3)
    assert f.escape_rate_theory == pytest.approx(predicted, rel=1e-9) and f.escape_theory == "kramers"


# (lr, B): rho = (1 - lr a)^2 + lr^2 s^2 / B at the non-uniform minimum (a = 1, s = 3): below 1 for the first five
PAIRS = [(0.3, 2), (0.3, 4), (0.5, 4), (0.5, 8), (1.0, 16), (0.3, 1), (0.5, 2), (1.0, 4)]


@pytest.mark.parametrize("lr, B", PAIRS)
def test_the_stability_criterion_says_which_settings_keep_the_chains_in_the_non_uniform_minimum(lr, B):
    text = (f'seed = 1\nchains = 512\n[problem]\nkind = "nonuniform"\nsharpness = 1.0\nspreads = [3.0, 0.2]\n'
            f'[optimizer]\nlr = {lr}\nbatch_size = {B}\nsampling = "replacement"\n')
    probe = Simulation(parse_scenario(text), stats=False)
    a = probe.problem.curv64[:, 0]                   # the per-example curvatures at the non-uniform minimum
    rho = (1 - lr * a.mean()) ** 2 + lr**2 * a.var() / B
    assert abs(rho - 1) > 0.1
    # 20 relaxation times: of the mean (1 / (lr a)) or of the mean square (1 / |ln rho|), the longer
    steps = math.ceil(20 * max(1 / (lr * a.mean()), 1 / abs(math.log(rho))))
    _, f = run_bsim(text, steps)
    if rho <= 1:
        assert f.basin_0_frac > 0.9
    else:
        assert f.basin_0_frac < 0.1
    assert (f.landscape.basins[0].rho <= 1) == (rho <= 1) and f.landscape.basins[0].rho == pytest.approx(rho)
