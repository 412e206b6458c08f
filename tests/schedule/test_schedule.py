"""Schedules in the simulation: lr warm-up and decay, the adaptive batch size, Smith et al.'s two lanes."""

from __future__ import annotations

import math

import pytest
import torch

from bsim.race.race import Race
from bsim.scenario import find_scenario, parse_scenario
from bsim.simulation import Simulation

SMALL = """seed = 2
[problem]
kind = "linreg"
n_train = 256
n_test = 0
dim = 2
[optimizer]
lr = 0.08
batch_size = 16
sampling = "iid"
[schedule]
lr = { every_epochs = 2, factor = 0.5, min = 0.015, warmup_epochs = 1, warmup_from = 0.25 }
"""


def test_lr_warms_up_linearly_then_halves_every_two_epochs_down_to_its_min():
    sim = Simulation(parse_scenario(SMALL), stats=False)
    for _ in range(160):           # 10 epochs of 16 steps
        before = sim.sampler.samples
        sim.step()
        e = before / 256           # the epoch the step starts at
        if e < 1:
            want = 0.08 * (0.25 + 0.75 * e)
        else:
            want = max(0.015, 0.08 * 0.5 ** math.floor(e / 2))
        assert sim.last_lr == pytest.approx(want, rel=1e-12), (sim.step_count, e)
    assert sim.last_lr == 0.015 and sim.batch_size == 16


def settled_at(sim, eps: float, steps: int) -> int | None:
    """The step from which the train loss stays within eps of the optimum's to the last step (None: not by then)."""
    p = sim.problem
    target = float(p.train_loss(p.theta_star)) + eps
    since = None
    with torch.no_grad():
        for _ in range(steps):
            sim.step()
            since = (since or sim.step_count) if float(p.train_loss(sim.theta)) <= target else None
    return since


def test_the_adaptive_batch_size_only_grows_and_reaches_the_target_in_fewer_steps_than_its_start():
    """The bundled adaptive-batch scenario (N = 4096, B = 8, lr 0.1): the norm test grows B at least twice, never
    shrinks it, and the loss settles within 2e-5 of the optimum's; at a fixed B = 8 it stays in the noise ball
    (its mean excess loss is about 1e-3 here), so it does not within the same budget."""
    sc = find_scenario("adaptive-batch")
    sim = Simulation(sc, stats=False)
    sizes = []
    sim.observers.append(lambda s: sizes.append(s.last_batch_size))
    adaptive = settled_at(sim, 2e-5, 500)
    growths = sum(b > a for a, b in zip(sizes, sizes[1:]))
    assert all(b >= a for a, b in zip(sizes, sizes[1:])) and growths >= 2, sizes[::50]
    assert sizes[0] == 8 and sizes[-1] > 64
    fixed = sc.copy()
    fixed.schedule = None
    baseline = settled_at(Simulation(fixed, stats=False), 2e-5, 500)
    assert adaptive is not None and (baseline is None or adaptive < baseline), (adaptive, baseline)
    # its statistic: measured once a window of 16 steps is in, and each growth starts a new window
    assert sim.schedule.batch_test is not None and sim.frame(timing=False).batch_test_label.startswith("norm test")


def c_b(n: int, b: int) -> float:
    """c_B for B distinct examples out of N: (N - B) / (B (N - 1))."""
    return (n - b) / (b * (n - 1))


def test_decay_lr_and_grow_batch_give_the_same_loss_per_epoch_while_b_is_small_against_n():
    """Smith et al. 2018 on the bundled grow-batch problem at N = 1024, switches every epoch (lr/4 or 4B): the
    per-epoch train loss within 10% after each switch while B <= N/16, fewer steps for grow-batch, and bsim's
    predicted balls (exact, iid) in the ratio the small-lr law gives, sqrt(4 c_4B / c_B): about 1 while
    B << N, 0.76 at B = N/2 (c_B is not 1/B there)."""
    sc = find_scenario("grow-batch")
    sc.problem.n_train = 1024
    for lane in sc.schedule["lane"].values():
        for key in ("batch_size", "lr"):
            if isinstance(lane.get(key), dict):
                lane[key] = {**lane[key], "every_epochs": 1.0}
    race = Race(sc, [8, 8], names=["decay-lr", "grow-batch"])
    race.set_limit("samples", 5 * 1024)
    at_epoch: dict[int, list] = {}
    while race.step():
        sim = race.last_lane.sim
        if sim.sampler.samples % 1024 == 0:
            f = sim.frame(timing=False)
            at_epoch.setdefault(sim.sampler.samples // 1024, [None, None])[race.lanes.index(race.last_lane)] = f
    decay_steps, grow_steps = (lane.steps for lane in race.lanes)
    assert grow_steps < decay_steps / 3, (decay_steps, grow_steps)
    for epoch, (d, g) in sorted(at_epoch.items()):
        if epoch >= 2:       # after the first switch (at epoch 1): B = 4^(epoch - 1) * 8 in the grow lane
            b = g.batch_size
            assert b == min(1024, 8 * 4 ** (epoch - 1)) and d.batch_size == 8
            if b <= 1024 // 16:
                assert g.train_loss == pytest.approx(d.train_loss, rel=0.10), epoch
            law = math.sqrt(4 * c_b(1024, b) / c_b(1024, b // 4))
            assert g.ball_radius_theory / d.ball_radius_theory == pytest.approx(law, rel=0.05), (b, law)
            if b <= 1024 // 32:
                assert law > 0.98
            if b == 512:
                assert law < 0.8


def test_lanes_by_schedule_are_known_by_name_on_the_race_screen_and_in_its_targets():
    """Two lanes at one B, told apart by their names: the screen's history, its ball titles and the loss
    targets key them by name (by batch size they would be one lane)."""
    from bsim.app.race.history import RaceHistory
    sc = find_scenario("grow-batch")
    sc.problem.n_train = 512
    race = Race(sc, [8, 8], names=["decay-lr", "grow-batch"], stats=False)
    history = RaceHistory()
    for _ in range(40):
        race.round()
        history.add(race.frame(timing=False))
    assert list(history.lanes) == ["decay-lr", "grow-batch"]
    assert [h.label for h in history.order] == ["decay-lr", "grow-batch"]
    targets = race.frame(timing=False).targets
    assert targets is not None and targets.leader in ("decay-lr", "grow-batch")
    assert {r.batch_size for t in targets.targets for r in t.reached} <= {"decay-lr", "grow-batch"}


def test_the_counters_say_the_next_change_and_the_tests_statistic_as_measured():
    """The counters panel's schedule rows: each next change on a line, the adaptive test's value marked measured."""
    from bsim.app.widgets.counters import schedule_rows
    sc = find_scenario("adaptive-batch")
    sim = Simulation(sc, stats=False)
    f = sim.frame(timing=False)
    assert schedule_rows(f) == [("next", "B 8→16 when test > 1", "yellow"), ("B test", "measuring…", "yellow"),
                                (None, "norm test, theta 1; > 1 grows B", "axis")]
    sim.run(17)      # the window of 16 steps is read before the 17th
    f = sim.frame(timing=False)
    assert f.batch_test is not None and schedule_rows(f)[1][1].endswith(" measured")
    grow = find_scenario("grow-batch")
    f = Simulation(grow, stats=False).frame(timing=False)
    assert schedule_rows(f) == [("next", "B 8→32 at epoch 4", "yellow")]


def test_a_replay_follows_the_recorded_growths_until_the_user_takes_over(tmp_path):
    """A recording of an adaptive run replays its growths from the timeline (the file's theta does not matter);
    once the replay is over (its end, or the user taking over), the test grows B again by itself."""
    from bsim import actions
    from bsim.recording import Recorder
    from bsim.runner import Runner
    from bsim.scenario import load_scenario
    sc = find_scenario("adaptive-batch")
    sc.problem.n_train = 512
    live = Simulation(sc, stats=False)
    rec = Recorder.start(tmp_path / "r.toml", scenario=sc, timeline=live.timeline)
    live.run(120)
    rec.stop(live)
    recorded = load_scenario(tmp_path / "r.toml")
    grown = [(ev.at, ev.batch_size) for ev in recorded.timeline]
    assert len(grown) >= 2 and live.batch_size == grown[-1][1]
    recorded.schedule = {**recorded.schedule, "adaptive": {**recorded.schedule["adaptive"], "theta": 1e6}}
    runner = Runner(Simulation(recorded, stats=False), recorded, threaded=False, timing=False, replay=True,
                    replay_end=120)
    runner.start()
    runner.advance(120)
    assert runner.sim.batch_size == live.batch_size          # the recorded growths, not the test at theta 1e6
    assert not runner.replay and not runner.sim.schedule.follow     # the end of the recording: live from here
    recorded_b = runner.sim.batch_size
    runner.sim.schedule.adaptive.theta = 0.01               # a test that fails at once: B grows by itself now
    runner.advance(40)
    assert runner.sim.batch_size > recorded_b
    again = Runner(Simulation(recorded, stats=False), recorded, threaded=False, timing=False, replay=True,
                   replay_end=120)
    again.start()
    again.advance(30)
    assert again.replay and again.sim.schedule.follow
    again.submit(actions.SetLR(0.05))                         # the user takes over mid-replay
    assert not again.replay and not again.sim.schedule.follow
