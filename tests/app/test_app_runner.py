"""The runner: the thread that owns the simulation, applies actions between steps and publishes frames."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from support.app import small

from bsim import actions, controls
from bsim.runner import Runner, progress_line
from bsim.scenario import Event, find_scenario
from bsim.simulation import Simulation


class Log:
    def __init__(self):
        self.frames, self.events = [], []
        self.lock = threading.Lock()

    def frame(self, f):
        with self.lock:
            self.frames.append(f)

    def event(self, kind, text):
        with self.lock:
            self.events.append((kind, text))

    def texts(self, kind=None):
        with self.lock:
            return [t for k, t in self.events if kind is None or k == kind]


def make(sc=None, **kw):
    log = Log()
    sim = Simulation(sc or small())
    kw.setdefault("threaded", False)
    r = Runner(sim, on_frame=log.frame, on_event=log.event, timing=False, **kw)
    return sim, r, log


def test_actions_apply_between_steps_and_history_keeps_their_ticks():
    sim, r, log = make()
    r.start()
    r.advance(5)
    r.submit(actions.SetBatchSize(32))
    r.advance(3)
    r.submit(actions.SetLR(0.01))
    r.advance(2)
    assert r.action_log == [(5, actions.SetBatchSize(32)), (8, actions.SetLR(0.01))]
    assert log.texts("notice") == ["batch size 8 -> 32", "lr 0.05 -> 0.01"]
    # the step after the change used the new batch size; the frame of the step says so
    assert log.frames[-1].batch_size == 32 and log.frames[-1].lr == 0.01
    # the same actions at the same ticks, applied by hand, give the same parameters bit for bit
    ref = Simulation(small())
    ref.run(5)
    ref.set_batch_size(32)
    ref.run(3)
    ref.set_lr(0.01)
    ref.run(2)
    assert torch.equal(ref.theta, sim.theta)


def test_bad_values_are_notices_not_exceptions():
    sim, r, log = make()
    r.start()
    r.submit(actions.SetBatchSize(0))
    r.submit(actions.SetLR(-1.0))
    r.submit(actions.SetSampling("sorted"))
    assert len(log.texts("error")) == 3
    assert "expected an integer >= 1" in log.texts("error")[0]
    assert sim.batch_size == 8 and sim.lr == 0.05 and r.action_log == []


def test_batch_size_above_n_is_clamped_with_a_notice():
    sim, r, log = make()
    r.submit(actions.SetBatchSize(5000))
    assert sim.batch_size == 256
    assert "clamped" in log.texts("notice")[-1]
    assert r.latest.next_batch_size == 256


def test_step_while_paused_takes_exactly_one_step_and_publishes_it():
    sim, r, log = make(paused=True)
    r.start()
    r.submit(controls.Step())
    assert sim.step_count == 1
    f = log.frames[-1]
    assert f.step == 1 and f.grad_norm == pytest.approx(float(sim.last_grad.norm()))
    # n while running pauses first (the next n steps)
    sim2, r2, log2 = make(paused=False)
    r2.submit(controls.Step())
    assert r2.paused and sim2.step_count == 0


def test_speed_caps_move_through_the_levels():
    _, r, log = make()
    assert r.speed is None
    r.submit(controls.Faster())
    assert r.speed is None and "already" in log.texts()[-1]
    r.submit(controls.Slower())
    r.submit(controls.Slower())
    assert r.speed == controls.SPEEDS[-3]
    for _ in range(len(controls.SPEEDS)):
        r.submit(controls.Slower())
    assert r.speed == controls.SPEEDS[0] == 1


def test_threaded_runner_respects_a_speed_cap():
    sim = Simulation(small())
    r = Runner(sim, timing=False, speed=50)
    r.start()
    time.sleep(1.0)
    r.stop()
    # 50 steps/s for 1 s; generous bounds for a loaded machine (the cap is an upper limit)
    assert 10 <= sim.step_count <= 60


def test_threaded_runner_applies_an_action_before_the_next_step():
    sim = Simulation(small())
    log = Log()
    r = Runner(sim, on_frame=log.frame, on_event=log.event, timing=False)
    r.start()
    time.sleep(0.3)
    r.submit(actions.SetBatchSize(64))
    deadline = time.time() + 5
    while not any(f.batch_size == 64 for f in list(log.frames)) and time.time() < deadline:
        time.sleep(0.01)
    r.submit(controls.Pause())
    time.sleep(0.2)
    r.stop()
    [(tick, action)] = r.action_log
    assert action == actions.SetBatchSize(64)
    # every frame after the change shows a step of 64 examples (or the short last batch of a shuffled
    # epoch, after which a new epoch begins), and the first came right after the change
    after = [f for f in log.frames if f.tick > tick]
    assert after and all(f.batch_size == 64 or (f.batch_size < 64 and f.batch_in_epoch == 0) for f in after)
    assert all(f.next_batch_size == 64 for f in after)
    assert min(f.tick for f in after) == tick + 1
    assert r.paused and not r._thread.is_alive()


def test_divergence_pauses_with_a_hint_and_reset_recovers():
    sim, r, log = make(sc=small(lr=5.0))
    r.start()
    r.advance(500)
    assert sim.diverged and r.paused
    assert "lower the lr" in log.texts("error")[-1]
    r.submit(controls.Resume())
    assert r.paused and "reset" in log.texts("error")[-1]
    r.submit(actions.SetLR(0.05))
    r.submit(actions.Reset())
    r.submit(controls.Resume())
    assert not r.paused and not sim.diverged
    assert r.advance(10) == 10


def test_timeline_pause_event_stops_before_its_step():
    sc = small()
    sc.timeline = [Event(at=7, pause=True, caption="look here")]
    sim, r, log = make(sc=sc)
    r.advance(20)
    assert sim.tick == 7 and r.paused
    assert log.texts("caption") == ["look here"]
    r.submit(controls.Resume())
    assert r.advance(5) == 5 and sim.tick == 12


def test_replay_holds_at_each_caption_and_jump_goes_to_the_next():
    sim, r, log = make(sc=find_scenario("ball-shrinks"), replay=True)
    r.advance(1)                                   # the caption at step 0 holds the replay before the step
    assert sim.tick == 0 and r.paused
    assert log.texts("caption")[0].startswith("B = 4")
    r.submit(controls.JumpToCaption())                    # fast-forward to the next caption (step 3000)
    assert sim.tick == 3000 and r.paused
    assert log.texts("caption")[-1].startswith("4x the batch")
    r.submit(controls.Resume())
    r.advance(1)
    assert sim.batch_size == 16                    # the event at 3000 was applied by the next step


def test_take_over_drops_the_rest_of_the_timeline():
    sim, r, log = make(sc=find_scenario("ball-shrinks"), replay=True)
    r.submit(controls.Resume())
    r.advance(1)
    r.submit(controls.Resume())
    r.advance(100)
    r.submit(actions.SetBatchSize(8))
    assert not r.replay
    assert any("took over" in t for t in log.texts("notice"))
    r.fast_forward(6500)
    assert sim.batch_size == 8                     # the events at 3000 and 6000 are gone


def closing_lecture():
    """A replay of three stops: the opening caption, a change with its caption, the closing caption at the end."""
    sc = small()
    sc.timeline = [Event(at=0, caption="opening"), Event(at=10, batch_size=16, caption="sixteen now"),
                   Event(at=20, pause=True, caption="the end: space goes on")]
    return make(sc=sc, replay=True, replay_end=20)


def test_a_replay_ends_on_its_closing_caption_and_going_on_clears_it():
    sim, r, log = closing_lecture()
    for held_at in (0, 10):                # held before the step at each caption: space goes on
        r.advance(100)
        assert sim.tick == held_at and r.paused
        r.submit(controls.Resume())
    r.advance(10)
    # the end (step 20): the closing caption is on the banner, with the notice that the replay ended
    assert sim.tick == 20 and r.paused and not r.replay
    assert log.texts("caption") == ["opening", "sixteen now", "the end: space goes on"]
    assert "reached the end of the recording (step 20)" in log.texts("notice")[-1]
    r.submit(controls.Resume())            # one space: a live run, the closing caption cleared
    assert r.advance(5) == 5 and sim.tick == 25 and log.texts("caption")[-1] == ""


def test_jumping_to_the_closing_caption_ends_the_replay_there():
    sim, r, log = closing_lecture()
    r.submit(controls.JumpToCaption())
    r.submit(controls.JumpToCaption())
    assert sim.tick == 20 and r.paused and not r.replay
    assert log.texts("caption")[-1] == "the end: space goes on" and not log.texts("error")
    r.submit(controls.Resume())
    assert r.advance(3) == 3 and sim.tick == 23


def test_taking_over_a_replay_clears_its_caption():
    sim, r, log = closing_lecture()
    r.advance(1)
    assert log.texts("caption") == ["opening"]
    r.submit(actions.ScaleBatchSize(2))     # ] during the replay
    assert not r.replay and log.texts("caption") == ["opening", ""]
    assert r.state().caption is None       # what the next frame carries


def test_a_replay_fast_forwards_in_the_thread_and_says_how_far_it_got():
    """begin_at: the thread fast-forwards (progress at once, then every PROGRESS_PERIOD s); stop() cuts it short."""
    sim, r, log = make(threaded=True, replay=True)
    r.begin_at(10**9)
    t0 = time.perf_counter()
    r.start()
    while not log.texts("progress") and time.perf_counter() - t0 < 5:
        time.sleep(0.01)
    first = time.perf_counter() - t0
    while len(log.texts("progress")) < 3 and time.perf_counter() - t0 < 10:
        time.sleep(0.01)
    t1 = time.perf_counter()
    r.stop()
    stopped = time.perf_counter() - t1
    progress = log.texts("progress")
    assert first < 1.0 and progress[0].startswith("fast-forwarding to step 1,000,000,000")
    assert len(progress) >= 3 and sim.tick > 0 and stopped < 1.0
    assert not any("fast-forwarded" in t for t in log.texts("notice"))     # stopped before it got there


def test_a_replay_without_a_thread_fast_forwards_at_once():
    sim, r, log = make(replay=True)
    r.begin_at(40)
    assert progress_line(12, 48, 60) == "fast-forwarding to step 60: ━━━━━╸──────────────  25% (q quits)"
    assert len(progress_line(0, 10**9, 10**9)) < 78          # whole in the notice bar at 80 columns
    assert sim.tick == 40 and log.texts("progress")[0].startswith("fast-forwarding to step 40:")
    assert log.texts("notice")[-1] == "fast-forwarded to step 40, where the recording began"


def test_recording_through_the_runner(tmp_path):
    import tomllib
    sim, r, log = make(recordings_dir=tmp_path)
    r.advance(4)
    r.submit(controls.ToggleRecording(None))
    r.submit(controls.AddCaption("  eight,\n  then more "))
    r.submit(actions.SetBatchSize(16))
    r.submit(controls.Pause())
    r.advance(6)
    r.submit(controls.ToggleRecording(None))
    [path] = tmp_path.glob("*.toml")
    data = tomllib.loads(path.read_text())
    assert data["recording"]["began_at"] == 4 and data["recording"]["final_tick"] == 10
    kinds = [(e["at"], sorted(k for k in e if k != "at")) for e in data["timeline"]]
    assert kinds == [(4, ["caption"]), (4, ["batch_size"]), (4, ["pause"])]
    assert data["timeline"][0]["caption"] == "eight, then more"
    assert any("recording saved" in t for t in log.texts("notice"))


def test_caption_without_recording_and_a_recording_error_are_notices(tmp_path):
    _, r, log = make(recordings_dir=tmp_path)
    r.submit(controls.AddCaption("hello"))
    assert "press R" in log.texts("error")[-1]
    r.submit(controls.ToggleRecording(str(tmp_path / "no" / "such" / "dir" / "x.toml")))
    assert "cannot write" in log.texts("error")[-1] and r.recorder is None
    r.advance(3)                                   # the run goes on


def test_plane_request_gives_the_loss_on_the_grid():
    sim, r, log = make()
    p = sim.problem
    star = p.theta_star.tolist()
    r.submit(controls.PlaneRequest(star[0] - 1, star[0] + 1, star[1] - 0.5, star[1] + 0.5, 5, 3))
    req, grid = log.frames[-1].runner.plane
    assert grid.shape == (3, 5)
    # row i is y = y0 + i * dy, column j is x = x0 + j * dx; the centre is theta*
    expect = float(p.loss(torch.tensor([star[0] - 0.5, star[1] + 0.5], dtype=p.dtype), p.X, p.y))
    assert grid[2, 1] == pytest.approx(expect, rel=1e-12)
    assert grid[1, 2] == pytest.approx(float(p.train_loss(p.theta_star)), rel=1e-12)
    assert grid.min() == grid[1, 2]


def test_stop_finishes_a_recording_and_ends_the_thread(tmp_path):
    import tomllib
    sim = Simulation(small())
    r = Runner(sim, timing=False, recordings_dir=tmp_path)
    r.start()
    r.submit(controls.ToggleRecording(str(tmp_path / "run.toml")))
    time.sleep(0.3)
    r.stop()
    assert not r._thread.is_alive()
    table = tomllib.loads((tmp_path / "run.toml").read_text())["recording"]
    assert table["final_step"] == sim.step_count > 0


def test_the_timeline_s_changes_are_told_at_the_step_the_counter_shows():
    """A scenario event at step 5 says what it changed, at step 5 (it was dropped silently before)."""
    from bsim.scenario import Event
    sc = small()
    sc.timeline = [Event(at=5, batch_size=16)]
    sim, r, log = make(sc)
    r.advance(8)
    assert "at step 5: batch size 8 -> 16" in log.texts("notice")
    assert sim.frame().batch_size == 16
