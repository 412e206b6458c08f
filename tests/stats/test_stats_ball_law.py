"""The ball's law on a frame: the settings visited, each measured at that setting only, with standard errors.

References independent of the code under test: a plain NumPy ensemble of SGD
chains under shuffle (its own permutations and loop), and the spread of the
trail's radius over 24 independent sampling streams of one problem (for the
standard error the trail reports).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.ball_law import CURVE_MAX_DIM


def default(**overrides):
    return apply_overrides(find_scenario("default"), device="cpu", **overrides)


def numpy_ensemble(problem, batch_size, lr, chains, burn_in, steps, seed):
    """(mean over chains and steps of |theta - theta*|^2, its se over chains): shuffled epochs, from theta*."""
    X, y, star = problem.X64, problem.y64, problem.theta_star64
    n = len(y)
    rng = np.random.default_rng(seed)
    theta = np.tile(star, (chains, 1))
    acc = np.zeros(chains)
    perm, pos = None, n
    for t in range(burn_in + steps):
        if pos >= n:
            perm, pos = rng.permuted(np.tile(np.arange(n), (chains, 1)), axis=1), 0
        idx = perm[:, pos:pos + batch_size]
        pos += batch_size
        xb, yb = X[idx], y[idx]                                   # (K, B, d), (K, B)
        resid = np.einsum("kbd,kd->kb", xb, theta) - yb
        theta = theta - lr * np.einsum("kb,kbd->kd", resid, xb) / batch_size
        if t >= burn_in:
            acc += ((theta - star) ** 2).sum(1)
    acc = acc / steps
    return acc.mean(), acc.std(ddof=1) / math.sqrt(chains)


@pytest.mark.slow
def test_each_setting_visited_is_measured_there_within_3_se_of_its_theory_and_of_an_ensemble():
    sim = Simulation(default(lr=0.2, chains=64))         # relaxation 1 / (lr lambda_min) = 20 steps
    sim.run(1200)
    sim.set_batch_size(256)
    sim.run(1200)
    law = sim.frame(timing=False).ball_law
    assert [(p.batch_size, p.current) for p in law.points] == [(8, False), (256, True)]
    for point in law.points:
        ms, ms_se = numpy_ensemble(sim.problem, point.batch_size, 0.2, 200, 200, 1000, seed=point.batch_size)
        ref, ref_se = math.sqrt(ms), ms_se / (2 * math.sqrt(ms))
        assert point.theory_kind == "reshuffled"
        for measure in (point.trail, point.chains):
            assert measure.se is not None and measure.se < 0.05 * measure.radius
            assert abs(measure.radius - point.theory) < 3 * measure.se
            assert abs(measure.radius - ref) < 3 * math.hypot(measure.se, ref_se)
        assert point.chains.samples == 64 and point.trail.samples > 40
    # a 14x shrink, read off the points
    assert law.points[0].chains.radius / law.points[1].chains.radius > 10


@pytest.mark.slow
def test_the_trail_standard_error_matches_the_spread_over_independent_sampling_streams():
    radii, errors = [], []
    for stream in range(24):
        sim = Simulation(default(lr=0.2))
        sim.sampler.gen.manual_seed(1000 + stream)        # one problem, independent batches
        sim.run(1000)
        trail = sim.frame(timing=False).ball_law.points[-1].trail
        radii.append(trail.radius)
        errors.append(trail.se)
    spread, se = float(np.std(radii, ddof=1)), math.sqrt(np.mean(np.square(errors)))
    # 24 streams give the spread to about +-15% (1 sd); the batch-means se is itself estimated from 8 blocks
    assert 0.6 < spread / se < 1.6


def test_a_setting_shows_settling_until_its_window_has_enough_relaxation_times():
    sim = Simulation(default(lr=0.2))
    sim.run(300)                                          # burn-in 160 steps, then 140 steps: 7 relaxation times
    trail = sim.frame(timing=False).ball_law.points[-1].trail
    assert trail is not None and trail.se is None and 6 < trail.samples < 8
    sim.run(900)
    assert sim.frame(timing=False).ball_law.points[-1].trail.se is not None


def test_the_curves_follow_the_sampling_and_the_lr_scaling_in_force():
    sim = Simulation(default(lr=0.1))
    sim.ball_law_curves = True          # what the app's runner sets: it draws the curves
    sim.run(2)
    law = sim.frame(timing=False).ball_law
    sizes = law.curve_batch_sizes
    assert sizes == tuple(2 ** k for k in range(10))       # 1 .. 512 below N = 1024
    assert (law.curve_kind, law.other_kind) == ("reshuffled", "exact")
    at_8 = law.curve[sizes.index(8)]
    assert at_8 == law.points[-1].theory
    assert all(a > b for a, b in zip(law.curve, law.curve[1:]))            # the ball shrinks with B
    assert all(s < o for s, o in zip(law.curve[3:], law.other_curve[3:]))  # shuffle's ball is the smaller
    sim.set_batch_size(64)
    sim.run(2)
    assert sim.frame(timing=False).ball_law.curve == law.curve          # lr fixed (no scaling): the same curve
    sim.set_lr_scaling("linear")
    sim.set_batch_size(128)                                             # lr 0.1 -> 0.2
    sim.run(2)
    linear = sim.frame(timing=False).ball_law
    assert linear.curve[sizes.index(128)] == linear.points[-1].theory
    assert linear.curve[sizes.index(64)] == law.curve[sizes.index(64)]  # lr / B as at (64, 0.1)
    sim.set_sampling("iid")
    sim.run(2)
    iid = sim.frame(timing=False).ball_law
    assert (iid.curve_kind, iid.other_kind) == ("exact", "reshuffled")
    assert iid.curve == linear.other_curve and iid.other_curve == linear.curve
    assert [p.batch_size for p in iid.points] == [8, 64, 128, 128] and iid.points[-1].sampling == "iid"


def test_the_lstm_has_no_ball_law():
    sim = Simulation(apply_overrides(find_scenario("lstm"), device="cpu"))
    sim.run(2)
    assert sim.frame(timing=False).ball_law is None


def test_the_curves_are_computed_only_for_a_view_that_draws_them_and_a_small_problem():
    """A headless run never pays for the curves; at d = 32 (sweep-linreg) 20 predictions would take ~40 s."""
    sim = Simulation(default(lr=0.1))
    sim.run(2)
    law = sim.frame(timing=False).ball_law
    assert all(r is None for r in law.curve + law.other_curve)
    assert law.curve_kind == "reshuffled" and law.points[-1].theory is not None   # the setting keeps its prediction
    sc = default(lr=0.01)
    sc.problem.dim = CURVE_MAX_DIM + 1
    big = Simulation(sc)
    big.ball_law_curves = True
    big.run(2)
    law = big.frame(timing=False).ball_law
    assert all(r is None for r in law.curve) and law.points[-1].theory is not None
