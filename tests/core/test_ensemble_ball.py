"""The ensemble checked against exact theory: chains_ball_radius against the iid ball of bsim.stats.ball.

For least squares with iid sampling the stationary second moment S solves an
exact linear equation (docs/science.md); sqrt(tr S) is the ball. The ensemble's
chains_ball_radius^2 at a step is the mean over chains of |theta_k - theta*|^2,
so its average over steps after a burn-in estimates tr S. The chains are
independent: the standard error (se) is the spread of the per-chain time
averages over sqrt(K). Tolerance: 4 se, with se small enough to see a 4%
error in the radius. Under shuffle no exact formula holds; the reference is
the independent vectorised ensemble of bsim.stats.chains (its own sampler and loop).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.ball import predict_ball, quad_model
from bsim.stats.chains import measure_ball


def scenario(batch_size, lr, sampling, chains, seed):
    """Least squares, N = 256, d = 2, Hessian eigenvalues about 0.5 and 1 (the wellcond case of test_stats_ball)."""
    sc = apply_overrides(find_scenario("default"), batch_size=batch_size, lr=lr, sampling=sampling, chains=chains,
                         seed=seed, device="cpu")
    sc.problem.n_train, sc.problem.condition = 256, 2.0
    return sc


def measure(sim, burn_in, steps):
    """(mean over steps of chains_ball_radius^2, its se from the per-chain averages, chains)."""
    sim.run(burn_in)
    radius_sq, per_chain = [], 0.0
    star = sim.problem.theta_star.numpy()
    for _ in range(steps):
        sim.step()
        f = sim.frame(timing=False)
        assert f.chains == sim.scenario.chains and f.chains_dropped == 0
        radius_sq.append(f.chains_ball_radius ** 2)
        per_chain = per_chain + ((f.chains_theta - star) ** 2).sum(1)
    per_chain = per_chain / steps
    assert math.isclose(np.mean(radius_sq), per_chain.mean(), rel_tol=1e-9)   # the column is what the cloud says
    return float(np.mean(radius_sq)), float(per_chain.std() / math.sqrt(len(per_chain)))


@pytest.mark.slow
@pytest.mark.parametrize("batch_size, lr_of_limit, chains, steps, seed",
                         [(1, 0.6, 1000, 300, 3), (8, 0.6, 1000, 300, 4), (8, None, 1000, 300, 5)])
def test_chains_ball_matches_the_exact_iid_prediction(batch_size, lr_of_limit, chains, steps, seed):
    sim = Simulation(scenario(batch_size, 0.2, "iid", chains, seed), stats=False)
    model = quad_model(sim.problem)
    lr = 0.2
    if lr_of_limit is not None:
        # near the stability limit, where the multiplicative noise doubles the ball; closer still, the
        # stationary law's tails grow heavy (Kesten) and the se of a mean square stops shrinking as 1/sqrt(K)
        lr = lr_of_limit * predict_ball(model, batch_size, 0.2, 0.0, "iid").lr_limit
        sim.set_lr(lr)
    theory = predict_ball(model, batch_size, lr, 0.0, "iid")
    ms, se = measure(sim, theory.burn_in, steps)
    pred = theory.radius ** 2
    assert se < 0.01 * pred, (se, pred)                 # fine enough to see a 2% error in the radius
    assert abs(ms - pred) < 4 * se, (ms, pred, se)
    assert abs(math.sqrt(ms / pred) - 1) < 0.04
    if lr_of_limit is not None:  # the additive-noise approximation is clearly off here: the test can tell
        assert abs(ms - theory.radius_additive ** 2) > 8 * se


def test_chains_ball_under_shuffle_matches_an_independent_ensemble():
    B, lr = 8, 0.5
    sim = Simulation(scenario(B, lr, "shuffle", 600, 6), stats=False)
    theory = predict_ball(quad_model(sim.problem), B, lr, 0.0, "iid")
    ms, se = measure(sim, theory.burn_in, 256)
    ref, ref_se = measure_ball(sim.problem, B, lr, 0.0, "shuffle", chains=600, burn_in=theory.burn_in, steps=256,
                               seed=7)
    assert abs(ms - ref) < 4 * math.hypot(se, ref_se), (ms, ref, se, ref_se)
    assert abs(ms - theory.radius ** 2) > 8 * math.hypot(se, ref_se)    # shuffle is not the iid ball
