"""A batch-size change in the middle of a shuffled epoch: whole epochs from the next one, the new ball later.

The reshuffled prediction assumes whole epochs at one B. After B changes
mid-epoch, that epoch mixes two batch sizes: until it ends the ball panel
says so (the prediction shown is the new B's, from the step it names), and
the measured ball's burn-in begins at that boundary. The reference is bsim's
own ensemble (``chains = K``, chains 1..K-1 on their own shuffled epochs,
checked elsewhere against an independent one): after the boundary and a
burn-in, chains_ball_radius^2 averaged over whole epochs must match the
prediction shown; the chains are independent, so the standard error is the
spread of the per-chain time averages over sqrt(K).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsim import actions
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.ball import predict_ball, quad_model

pytestmark = pytest.mark.slow      # Monte Carlo: ensembles of SGD chains

N, CHANGE_AT, B_OLD, B_NEW, LR = 256, 10, 4, 48, 0.3
# after 10 steps of B = 4 the epoch is at 40 of 256; steps 11-14 take 48 each and step 15 the 24 left:
# the mixed epoch ends at step 15, and whole epochs of 5 x 48 + 16 (a short last batch) begin at step 16
MIXED_END = 15
EPOCH_STEPS = 6


def simulation(chains: int, seed: int, drop_last: bool = False) -> Simulation:
    sc = apply_overrides(find_scenario("default"), batch_size=B_OLD, lr=LR, sampling="shuffle", chains=chains,
                         seed=seed, device="cpu")
    sc.problem.n_train, sc.problem.condition = N, 2.0
    sc.optimizer.drop_last = drop_last
    return Simulation(sc)


def change_b(sim: Simulation) -> None:
    assert sim.run(CHANGE_AT) == CHANGE_AT
    sim.apply(actions.SetBatchSize(B_NEW))


def test_the_mixed_epoch_is_labelled_until_the_boundary_and_the_window_waits_for_it():
    sim = simulation(chains=1, seed=21)
    change_b(sim)
    for step in range(CHANGE_AT + 1, MIXED_END + 1):
        sim.step()
        f = sim.frame(timing=False)
        assert f.ball_theory == "reshuffled"
        assert "B changed mid-epoch" in f.ball.note and f"begin at step {MIXED_END + 1}" in f.ball.note
        assert f.ball.holds_from == MIXED_END + 1 and f.ball.settles_at > MIXED_END
        assert f"within 5% of the new ball at about step {f.ball.settles_at}" in f.ball.note
        assert f.ball.burn_in_left == f.ball.burn_in + MIXED_END - step      # counting starts at the boundary
    sim.step()
    assert sim.sampler.batch_in_epoch == 1            # the sampler's own word: step 16 began an epoch
    f = sim.frame(timing=False)
    assert "mid-epoch" not in f.ball.note and f.ball.holds_from is None
    assert f.ball.burn_in_left == f.ball.burn_in + MIXED_END - sim.step_count
    # a change at an epoch boundary mixes nothing: no label, the usual burn-in
    sim.run(EPOCH_STEPS - 1)
    assert sim.sampler.batch_in_epoch == 0 or sim.sampler.batch_in_epoch == EPOCH_STEPS
    sim.apply(actions.SetBatchSize(32))
    sim.step()
    f = sim.frame(timing=False)
    assert sim.sampler.batch_in_epoch == 1 and "mid-epoch" not in f.ball.note
    assert f.ball.burn_in_left == f.ball.burn_in - 1


def test_an_lr_change_inside_the_mixed_epoch_keeps_the_label():
    sim = simulation(chains=1, seed=22)
    change_b(sim)
    sim.run(2)
    sim.apply(actions.SetLR(0.2))
    sim.step()
    assert f"begin at step {MIXED_END + 1}" in sim.frame(timing=False).ball.note
    sim.run(MIXED_END - sim.step_count + 1)
    assert "mid-epoch" not in sim.frame(timing=False).ball.note


def ensemble_ball(sim: Simulation, steps: int) -> tuple[float, float]:
    """(mean over ``steps`` steps of chains_ball_radius^2, its se from the per-chain time averages)."""
    star = sim.problem.theta_star.numpy()
    radius_sq, per_chain = [], 0.0
    for _ in range(steps):
        sim.step()
        f = sim.frame(timing=False)
        assert f.chains == sim.scenario.chains and f.chains_dropped == 0
        radius_sq.append(f.chains_ball_radius ** 2)
        per_chain = per_chain + ((f.chains_theta - star) ** 2).sum(1)
    per_chain = per_chain / steps
    return float(np.mean(radius_sq)), float(per_chain.std() / math.sqrt(len(per_chain)))


@pytest.mark.parametrize("drop_last", [False, True])
def test_after_the_boundary_the_ball_is_the_whole_epochs_one(drop_last):
    """Two ensembles of bsim on the same data: one that changed B mid-epoch, one at the new B from the
    start with generators of its own (independent draws).

    After the boundary and the burn-in they agree within the standard error: the mixed epoch leaves
    nothing behind. The prediction shown matches both within the issue's 3% (the reshuffled model's
    own accuracy, about 1% low here; bsim/stats/reshuffled.py); the old B's and the iid ball do not.
    """
    chains = 800
    sim = simulation(chains=chains, seed=23, drop_last=drop_last)
    change_b(sim)
    end = CHANGE_AT + 4 if drop_last else MIXED_END      # drop_last: the 24 left are skipped, not a step
    sim.run(end - CHANGE_AT)
    assert sim.sampler.batch_in_epoch == 0 or (drop_last and sim.sampler.pos == 232)
    burn = sim.frame(timing=False).ball.burn_in
    epoch = 5 if drop_last else EPOCH_STEPS               # whole epochs: 5 x 48 (+ 16, or skipped)
    sim.run(epoch * math.ceil(burn / epoch))
    ms, se = ensemble_ball(sim, epoch * 60)
    fresh = simulation(chains=chains, seed=23, drop_last=drop_last)      # the same data (the seed draws it)
    fresh.sampler.gen.manual_seed(1001)                                   # draws of their own, independent
    fresh.ensemble.sampler.gen.manual_seed(1002)
    fresh.apply(actions.SetBatchSize(B_NEW))
    fresh.run(epoch * math.ceil(burn / epoch))
    ms_fresh, se_fresh = ensemble_ball(fresh, epoch * 60)
    f = sim.frame(timing=False)
    pred = f.ball_radius_theory ** 2
    assert f.ball_theory == "reshuffled" and sim.batch_size == B_NEW and "mid-epoch" not in f.ball.note
    assert se < 0.01 * pred and se_fresh < 0.01 * pred, (se, se_fresh, pred)   # sees a 2% error in the radius
    assert abs(ms - ms_fresh) < 4 * math.hypot(se, se_fresh), (ms, ms_fresh, se, se_fresh)
    assert abs(math.sqrt(ms / pred) - 1) < 0.03 and abs(math.sqrt(ms_fresh / pred) - 1) < 0.03, (ms, ms_fresh, pred)
    # the test can tell: the old batch size's prediction and the iid one are far off
    old = predict_ball(quad_model(sim.problem), B_OLD, LR, 0.0, "shuffle", drop_last=drop_last).radius ** 2
    assert abs(ms - old) > 8 * se and abs(ms - f.ball.radius_iid ** 2) > 8 * se, (ms, old, f.ball.radius_iid, se)
    # the run's own measured ball counts from the boundary's burn-in only
    assert sim.noise_stats._window.first_counted == end + 1 + burn


def test_the_new_ball_is_reached_about_when_the_note_says():
    """An independent NumPy ensemble (2000 chains, shuffled epochs, the same batches in an epoch as the
    sampler's: B = 4 for 10 steps, then 48 from the same permutation, a short last batch) started in the old
    ball: E|e|^2 averaged over the epoch that begins at the boundary is still above the new ball; over the
    first whole epoch from the step the note names it is within 5% of the late epochs' average (+ 3 se)."""
    sim = simulation(chains=1, seed=21)
    change_b(sim)
    sim.step()
    settle = sim.frame(timing=False).ball.settles_at
    X, y, ts = sim.problem.X64, sim.problem.y64, sim.problem.theta_star64
    K, rng = 2000, np.random.default_rng(5)

    def step(E, idx):
        Xb = X[idx]
        r = np.einsum("kbd,kd->kb", Xb, E) + (Xb @ ts - y[idx])
        return E - LR * np.einsum("kbd,kb->kd", Xb, r) / idx.shape[1]

    E = np.zeros((K, 2))
    for _ in range(3):                              # into the old ball: 3 epochs at B = 4 (~37 relaxation times)
        P = np.argsort(rng.random((K, N)), axis=1)
        for j in range(N // B_OLD):
            E = step(E, P[:, j * B_OLD:(j + 1) * B_OLD])
    P, pos, sq = np.argsort(rng.random((K, N)), axis=1), 0, []
    for t in range(1, 161):
        if pos >= N:
            P, pos = np.argsort(rng.random((K, N)), axis=1), 0
        idx = P[:, pos:pos + (B_OLD if t <= CHANGE_AT else B_NEW)]
        pos += idx.shape[1]
        E = step(E, idx)
        sq.append((E * E).sum(1))
    sq = np.array(sq)                               # steps x chains
    first = MIXED_END + 1 + EPOCH_STEPS * math.ceil((settle - MIXED_END - 1) / EPOCH_STEPS)

    def epoch(s):                                   # per chain, E|e|^2 over the epoch from step s
        return sq[s - 1:s - 1 + EPOCH_STEPS].mean(0)
    late = np.mean([epoch(s) for s in range(MIXED_END + 1 + 10 * EPOCH_STEPS, 160 - EPOCH_STEPS, EPOCH_STEPS)],
                   axis=0)
    at_boundary, settled = epoch(MIXED_END + 1), epoch(first)
    r_settled = settled.mean() / late.mean()
    se = r_settled * np.std(settled / settled.mean() - late / late.mean()) / np.sqrt(K)
    assert abs(r_settled - 1) < 0.05 + 3 * se, (first, r_settled, se)
    assert at_boundary.mean() > settled.mean() and first <= MIXED_END + 1 + 3 * EPOCH_STEPS
