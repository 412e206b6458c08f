"""Who wins a race (issue 18): loss targets from the race's own range, the lane first to each on the race's
axis, the lanes listed by batch size and the loss chart from the race's start."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from bsim.app.race.history import RaceHistory
from bsim.app.race.loss import RaceLossPanel
from bsim.app.race.table import RaceTable
from bsim.race.targets import TargetTracker, choose_targets
from support.race import race_of


def lane(b: int, samples: int, loss: float, seconds: float = 0.0, status: str = "running"):
    frame = SimpleNamespace(step=samples // b, samples=samples, train_loss=loss, status=status)
    return SimpleNamespace(batch_size=b, key=b, frame=frame, seconds=seconds)   # a LaneFrame: its key is its B


#: two lanes by hand: (samples, train loss) at each frame
B8 = [(0, 1.0), (800, 0.5), (1600, 0.3), (2400, 0.2), (3200, 0.15), (4000, 0.12)]
B64 = [(0, 1.0), (1024, 0.6), (2048, 0.25), (3072, 0.14), (4096, 0.1)]


def hand_race(by: str = "samples"):
    tracker = TargetTracker()
    for (s8, l8), (s64, l64) in zip(B8, B64 + [B64[-1]]):
        tracker.observe([lane(8, s8, l8, seconds=s8 / 1000), lane(64, s64, l64, seconds=s64 / 4000)])
    return tracker.targets(by)


def test_targets_are_geometric_between_the_start_and_the_best_in_two_digits():
    assert choose_targets(1.0, 0.1) == [0.32, 0.16, 0.11]          # 1.0 * 0.1 ** (0.5, 0.8, 0.95)
    assert choose_targets(0.1197, 0.1183) == [0.119, 0.1184]       # a narrow range takes more digits
    assert choose_targets(0.5, 0.5) == [] and choose_targets(0.5, 0.7) == []


def test_the_lane_first_to_each_target_by_hand():
    t = hand_race("samples")
    assert (t.start_loss, t.best_loss) == (1.0, 0.1)
    assert [x.loss for x in t.targets] == [0.32, 0.16, 0.11]
    # 0.32: B=8 at 1,600 samples (0.3), B=64 at 2,048; 0.16: B=64 at 3,072 (0.14), B=8 at 3,200 (0.15);
    # 0.11: only B=64, at 4,096 (B=8 stopped at 0.12)
    firsts = [(x.first.batch_size, x.first.samples, x.first.steps) for x in t.targets]
    assert firsts == [(8, 1600, 200), (64, 3072, 48), (64, 4096, 64)]
    assert [r.batch_size for r in t.targets[1].reached] == [64, 8]
    assert t.targets[2].of(8) is None
    assert t.leader == 64
    by_steps = hand_race("steps")                 # by steps B=64 is first everywhere: 32 steps against 200
    assert [x.first.batch_size for x in by_steps.targets] == [64, 64, 64]
    by_time = hand_race("time")                   # B=8 1.6 s against B=64 0.512 s to 0.32
    assert by_time.targets[0].first.batch_size == 64 and by_time.targets[0].first.seconds == 2048 / 4000


def test_a_removed_lane_is_forgotten_and_a_reset_lane_starts_again():
    tracker = TargetTracker()
    tracker.observe([lane(8, 0, 1.0), lane(64, 0, 1.0)])
    tracker.observe([lane(8, 800, 0.2), lane(64, 1024, 0.5)])
    tracker.observe([lane(64, 2048, 0.4)])                          # B=8 left the race
    assert set(tracker.lows) == {64} and tracker.targets("samples").best_loss == 0.4
    tracker.observe([lane(64, 0, 0.9)])                             # steps went back: a new run
    assert [r.loss for r in tracker.lows[64]] == [0.9]
    tracker.observe([lane(64, 64, float("nan"), status="diverged")])
    assert [r.loss for r in tracker.lows[64]] == [0.9]


def test_a_real_race_marks_the_lane_that_reached_each_target_first():
    race = race_of("default", (64, 8), n_train=None)
    frames = []
    for _ in range(40):
        for _ in range(25):
            race.step()
        frames.append(race.frame(timing=False))
    targets = frames[-1].targets
    assert len(targets.targets) == 3
    for target in targets.targets:                     # an independent plain loop over the frames seen
        first = {}
        for rf in frames:
            for ln in rf.lanes:
                if ln.batch_size not in first and ln.frame.train_loss <= target.loss:
                    first[ln.batch_size] = ln.frame.samples
        winner = min(first, key=lambda b: (first[b], b))
        assert target.first.batch_size == winner and target.first.samples == first[winner]
    history = RaceHistory()
    for rf in frames:
        history.add(rf)
    lines = ["".join(seg.text for seg in strip) for strip in RaceTable(history).build(118, 5)]
    leader = targets.leader
    assert [line.split()[1] for line in lines if line.startswith("★ B=")] == [f"B={leader}"]   # the leader, starred
    assert lines[-1].startswith("★ first to loss") and f"B={leader} at " in lines[-1]


def test_lanes_sort_by_batch_size_and_the_loss_chart_covers_the_start():
    race = race_of("default", (64, 512), n_train=None)
    history = RaceHistory()
    for _ in range(30):
        for _ in range(100):
            race.step()
        history.add(race.frame(timing=False))
    race.add_lane(32)
    for _ in range(30):
        for _ in range(100):
            race.step()
        history.add(race.frame(timing=False))
    assert [h.batch_size for h in history.order] == [32, 64, 512]
    lines = ["".join(seg.text for seg in strip) for strip in RaceLossPanel(history).build(100, 12)]
    assert [w for w in lines[0].split() if w.startswith("B=")] == ["B=32", "B=64", "B=512"]
    assert lines[-1].split()[0] == "0" and "whole race (w)" in "\n".join(lines)   # the x axis starts at 0 samples
    first_losses = [h.trace.array()[0, 3] for h in history.order]
    assert max(first_losses) > 2 * min(float(np.nanmin(h.trace.array()[:, 3])) for h in history.order)
