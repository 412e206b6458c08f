"""The LSTM's two-batch estimates of tr(Sigma) and |G|^2, as NoiseStats makes them, against per-example truth.

The simulation runs with lr = 0, so every step is a fresh iid batch at the
same fixed parameters; its statistics take the two-batch estimate at every
step (stride 1) and average it as in any run (``SampledNoise``). The truth
comes from all N per-example gradients at those parameters (torch.func,
``per_example_vmap``), an independent computation. The standard error of the
exponentially weighted average is the per-draw spread (the same draws,
recomputed from the batches the run drew) times sqrt(sum w^2) / sum w.
Two fixed points: the initial parameters (|G|^2 large: its estimate is
precise) and after 300 steps of training (tr(Sigma) dominates: its estimate
is the precise one).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.cfactor import c_factor
from bsim.stats.noise_stats import NoiseStats
from bsim.stats.perexample import per_example_vmap
from bsim.stats.sampled import TWO_BATCH_HORIZON, SampledNoise
from bsim.stats.twobatch import half_batch_grad

pytestmark = pytest.mark.slow      # Monte Carlo against all per-example gradients

N, B, DRAWS = 64, 32, 800


def frozen_run(trained_steps: int) -> Simulation:
    """A small float64 LSTM, trained ``trained_steps`` steps, then run at lr = 0 with stride-1 statistics."""
    sc = find_scenario("lstm")
    sc.problem.n_train, sc.problem.hidden, sc.problem.seq_len = N, 4, 6
    sc.dtype = "float64"
    sim = Simulation(apply_overrides(sc, batch_size=8), stats=False)
    sim.run(trained_steps)
    theta = sim.theta.clone()
    frozen = Simulation(apply_overrides(sc, batch_size=B, sampling="iid", lr=0.0), stats=False)
    frozen.theta = theta
    frozen.noise_stats = NoiseStats(frozen, full_grad_every=10 ** 6, stride=1)
    return frozen


@pytest.mark.parametrize("trained_steps, precise", [(0, "grad_norm2"), (300, "trace_sigma")])
def test_two_batch_estimates_match_all_per_example_gradients(trained_steps, precise):
    torch.manual_seed(0)
    sim = frozen_run(trained_steps)
    p, theta = sim.problem, sim.theta.clone()
    batches = []
    sim.observers.append(lambda s: batches.append(s.last_idx.clone()))
    assert sim.run(DRAWS) == DRAWS
    assert torch.equal(sim.theta, theta)                      # lr = 0: one fixed point
    sim.frame(timing=False)                                   # NoiseStats folds what it buffered
    strategy = sim.noise_stats.strategy
    assert isinstance(strategy, SampledNoise)
    est = strategy.estimate()
    assert est.estimates == DRAWS

    # the truth: every per-example gradient at theta (torch.func)
    P = per_example_vmap(p, theta, torch.arange(N))
    G = P.mean(0)
    truth = {"trace_sigma": float(((P - G) ** 2).sum(1).mean()), "grad_norm2": float(G @ G)}

    # the standard error: per-draw estimates of the same batches, exponentially weighted as the average is
    c_small, c_big = c_factor(N, B // 2, "iid"), c_factor(N, B, "iid")
    per_draw = np.empty((DRAWS, 2))
    with torch.no_grad():
        for k, idx in enumerate(batches):
            gb, gs = p.loss_and_grad(theta, idx)[1], half_batch_grad(p, theta, idx)
            nb, ns = float(gb @ gb), float(gs @ gs)
            per_draw[k] = (ns - nb) / (c_small - c_big), (c_small * nb - c_big * ns) / (c_small - c_big)
    w = (1.0 - 1.0 / TWO_BATCH_HORIZON) ** np.arange(DRAWS - 1, -1, -1)
    shrink = math.sqrt(float((w * w).sum())) / float(w.sum())
    se = dict(zip(("trace_sigma", "grad_norm2"), per_draw.std(0, ddof=1) * shrink))

    got = {"trace_sigma": est.trace_sigma, "grad_norm2": est.full_grad_norm2}
    for name in ("trace_sigma", "grad_norm2"):
        assert abs(got[name] - truth[name]) < 4 * se[name], (name, got[name], truth[name], se[name])
    assert se[precise] < 0.1 * truth[precise]                 # the check at this point has teeth
    # what a frame shows: tr(Sigma) and B_simple = tr(Sigma) / |G|^2 from these estimates
    f = sim.frame(timing=False)
    assert f.trace_sigma == est.trace_sigma and f.noise_scale == pytest.approx(est.trace_sigma / est.full_grad_norm2)
