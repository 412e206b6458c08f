"""The race's core: lanes equal single runs, the lockstep's order, late lanes, divergence, the runner."""

import torch

from bsim.controls import Pause, Resume, Step
from bsim.race.controls import AddLane, RemoveLane
from bsim.race.race import Race, RaceError
from bsim.race.runner import RaceRunner
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation


def _single(sc, batch_size, steps, **overrides):
    sim = Simulation(apply_overrides(sc, batch_size=batch_size, **overrides))
    sim.run(steps)
    return sim


def test_each_lane_is_the_single_run_at_its_batch_size():
    sc = find_scenario("default")
    race = Race(sc, [8, 64])
    for _ in range(150):
        race.step()
    for lane in race.lanes:
        alone = _single(sc, lane.batch_size, lane.steps)
        assert lane.steps > 0 and torch.equal(lane.sim.theta, alone.theta)
        assert lane.frame(timing=False).frame.csv_row() == alone.frame(timing=False).csv_row()


def test_by_samples_the_lanes_stay_within_one_batch_of_each_other():
    race = Race(find_scenario("default"), [8, 64, 512], by="samples")
    for _ in range(400):
        race.step()
        samples = [lane.samples for lane in race.lanes]
        # the lane that stepped was the furthest behind: nobody is more than one of its own batches ahead
        for lane in race.lanes:
            assert lane.samples - lane.batch_size <= min(samples)


def test_by_steps_every_lane_has_the_same_steps_after_whole_rounds():
    race = Race(find_scenario("default"), [8, 64, 512], by="steps")
    for _ in range(3 * 50):
        race.step()
    assert [lane.steps for lane in race.lanes] == [50, 50, 50]


def test_a_lane_added_later_catches_up_to_where_it_would_have_been():
    sc = find_scenario("default")
    late = Race(sc, [8, 64])
    for _ in range(100):
        late.step()
    late.add_lane(32)
    early = Race(sc, [8, 64, 32])
    for race in (early, late):      # the steps that start before 1000 samples, no other
        while race.position < 1000:
            race.step()
    assert [lane.steps for lane in late.lanes] == [lane.steps for lane in early.lanes]
    assert all(torch.equal(a.sim.theta, b.sim.theta) for a, b in zip(late.lanes, early.lanes))


def test_a_diverged_lane_stops_and_the_others_go_on():
    # linear scaling from B0 = 8, lr 0.05: B = 1024 trains at lr 6.4, past 2 / lambda_max, and diverges
    race = Race(find_scenario("default"), [8, 1024], by="steps", lr_rule="linear")
    assert [lane.lr for lane in race.lanes] == [0.05, 0.05 * 1024 / 8]
    for _ in range(1000):
        race.step()
    small, big = race.lanes
    assert big.diverged and not small.diverged
    assert small.steps > big.steps
    assert any("B=1024" in n and "diverged" in n for n in race.take_notices())
    while race.step():          # the big lane no longer steps: the small one takes every step
        if small.steps == 1000:
            break
    assert small.steps == 1000


def test_repeats_too_many_lanes_and_clamping():
    sc = find_scenario("default")        # N = 1024
    race = Race(sc, [8, 5000])
    assert [lane.batch_size for lane in race.lanes] == [8, 1024]
    for bad in (8, 1024, 4096, 0, True):
        try:
            race.add_lane(bad)
        except RaceError:
            continue
        raise AssertionError(f"add_lane({bad!r}) was accepted")
    try:
        Race(sc, list(range(1, 10)))
    except RaceError as exc:
        assert "at most 8" in str(exc)
    else:
        raise AssertionError("9 lanes were accepted")


def test_runner_step_is_one_round_and_lanes_come_and_go():
    events, frames = [], []
    race = Race(find_scenario("default"), [8, 64], by="samples")
    runner = RaceRunner(race, on_frame=frames.append, on_event=lambda kind, text: events.append((kind, text)),
                        threaded=False, paused=True)
    runner.start()
    runner.submit(Step())       # the first of the furthest ahead (B=8, all at 0) steps, B=64 catches up
    assert [lane.samples for lane in race.lanes] == [8, 64]
    runner.submit(Step())       # B=64 now leads: it steps to 128, B=8 catches up to 128
    assert [lane.samples for lane in race.lanes] == [128, 128]
    runner.submit(AddLane(16))
    runner.submit(Step())
    # B=16 catches up from 0 to 128, B=8 (first of the leaders) steps to 136, the others catch up to it
    assert [lane.samples for lane in race.lanes] == [136, 192, 144]
    runner.submit(RemoveLane(8))
    assert [lf.batch_size for lf in runner.latest.lanes] == [64, 16]
    assert runner.latest.runner.paused
    runner.submit(AddLane(16))
    assert events[-1][0] == "error" and "already a lane" in events[-1][1]
    runner.submit(Resume())
    assert runner.advance(20) == 20 and not runner.latest.runner.paused
    runner.submit(Pause())
    assert runner.latest.runner.paused


def test_runner_thread_publishes_frames_and_stops():
    import time
    frames = []
    race = Race(find_scenario("default"), [8, 64])
    runner = RaceRunner(race, on_frame=frames.append, fps=50)
    runner.start()
    time.sleep(0.5)
    runner.stop()
    assert frames and frames[-1].lanes[0].frame.step > 0
    positions = [f.position for f in frames]
    assert positions == sorted(positions) and positions[-1] <= race.position
    assert len(frames) <= 0.5 * 50 + 5      # at most fps frames a second (and one after each change)


def test_by_time_the_lanes_share_the_clock_and_a_big_batch_sees_more_samples():
    race = Race(find_scenario("default"), [8, 512], by="time", stats=False)
    small, big = race.lanes
    longest = 0.0
    for _ in range(600):
        before = small.seconds + big.seconds
        race.step()
        longest = max(longest, small.seconds + big.seconds - before)
    # the lane behind on the clock always steps next, so the clocks never part by more than one step's time
    # (a bound that holds under any load: a step the machine preempted counts in both sides of it)
    assert abs(small.seconds - big.seconds) <= longest
    assert small.steps > big.steps and big.samples > small.samples   # 64x the batch costs far less than 64x
