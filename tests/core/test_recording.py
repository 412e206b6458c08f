"""Recording through the Recorder API, driven the way the app's runner drives it, then replayed headless.

A "live run" here applies user actions between steps at known ticks (before
the timeline events due at that tick, as the runner does), writes a metrics
row per step exactly as the headless writer does, and records. The replay of
the recording must give the same CSV byte for byte.
"""

from __future__ import annotations

import csv
import io
import tomllib
from pathlib import Path

import pytest

from bsim import actions
from bsim.actions import Caption, PausePoint
from bsim.cli import main
from bsim.frame import CSV_COLUMNS
from bsim.recording import Recorder, RecordingError, theta_sha256
from bsim.scenario import Event, find_scenario, load_scenario
from bsim.simulation import Simulation


def small_scenario():
    sc = find_scenario("default")
    sc.problem.n_train = 256
    sc.problem.n_test = 64
    sc.optimizer.lr_scaling = "linear"
    # a scenario event at the same tick as a user action below: the order within a tick matters
    sc.timeline = [Event(at=40, batch_size=16), Event(at=90, caption="the scenario's own caption")]
    return sc


# tick -> items the user applies between steps at that tick, in order
PLAN = {
    0: [actions.SetBatchSize(4)],
    10: [actions.SetLR(0.1 * 3), Caption('B = 4, lr "0.3": watch \\ the ball')],
    25: [actions.SetMomentum(0.5), actions.SetSampling("iid")],
    40: [actions.SetBatchSize(32)],          # then the scenario's batch_size = 16 applies at the same tick
    60: [actions.SetLRScaling("sqrt"), actions.SetBatchSize(64), PausePoint()],
    80: [actions.Reset()],
    90: [Caption("after the reset")],
    120: [actions.SetSampling("replacement"), actions.SetMomentum(0.0)],
    150: [actions.SwitchProblem("logreg")],
    170: [actions.SetBatchSize(7), Caption("logistic regression now")],
}
STEPS = 200


def live_run(sc, path: Path, steps: int = STEPS, plan=PLAN, record_from: int | None = 0, stop: bool = True):
    """The runner's loop: actions between steps, a CSV row after each step; returns (CSV text, sim, recorder)."""
    sim = Simulation(sc)
    history: list = []
    rec = None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sim.frame(timing=False)
    for _ in range(steps):
        t = sim.tick
        if record_from == t:
            rec = Recorder.start(path, scenario=sc, actions=history, began_at=t, timeline=sim.timeline)
        for item in plan.get(t, []):
            if not isinstance(item, (Caption, PausePoint)):
                sim.apply(item)
            history.append((t, item))
            if rec is not None:
                rec.add(t, item)
        assert sim.step()
        writer.writerow(sim.frame(timing=False).csv_row())
    if rec is not None and stop:
        rec.stop(sim)
    return buf.getvalue(), sim, rec


def replay_csv(path: Path, out: Path, *extra: str) -> str:
    code = main(["replay", str(path), "--headless", "--no-timing", "--metrics", str(out), *extra])
    assert code == 0
    return out.read_text()


def test_replay_gives_the_live_csv_byte_for_byte(tmp_path):
    rec_path = tmp_path / "session.toml"
    live, sim, _ = live_run(small_scenario(), rec_path)
    replayed = replay_csv(rec_path, tmp_path / "replay.csv")
    assert replayed == live
    assert len(replayed.splitlines()) == STEPS + 1
    # the run really changed: the problem switch and the batch sizes show in the rows
    rows = list(csv.DictReader(io.StringIO(replayed)))
    assert {r["batch_size"] for r in rows} >= {"4", "16", "64", "7"}


def test_order_within_a_tick_is_the_live_order(tmp_path):
    """At tick 40 the user set B = 32, then the scenario's event set B = 16: step 41 uses 16."""
    rec_path = tmp_path / "session.toml"
    live, _, _ = live_run(small_scenario(), rec_path, steps=50)
    rows = list(csv.DictReader(io.StringIO(replay_csv(rec_path, tmp_path / "r.csv"))))
    assert rows[40]["step"] == "41" and rows[40]["batch_size"] == "16"
    text = rec_path.read_text()
    assert text.index("batch_size = 32") < text.index("batch_size = 16")


def test_the_check_is_what_the_run_ended_with(tmp_path):
    rec_path = tmp_path / "session.toml"
    _, sim, _ = live_run(small_scenario(), rec_path)
    table = tomllib.loads(rec_path.read_text())["recording"]
    assert table["format"] == 1 and table["began_at"] == 0
    assert table["final_tick"] == STEPS == sim.tick
    assert table["final_step"] == sim.step_count == STEPS - 150  # the problem switch at tick 150 restarts the count
    assert table["train_loss"] == float(sim.problem.train_loss(sim.theta))
    assert table["theta_sha256"] == theta_sha256(sim.theta)
    assert table["device"] == "cpu" and table["dtype"] == "float64"
    # the hash is of theta's own bytes, little-endian: recompute independently with hashlib
    import hashlib
    assert table["theta_sha256"] == hashlib.sha256(sim.theta.numpy().astype("<f8").tobytes()).hexdigest()


def test_a_recording_begun_mid_run_replays_the_whole_run(tmp_path):
    rec_path = tmp_path / "mid.toml"
    live, sim, rec = live_run(small_scenario(), rec_path, record_from=55)
    data = tomllib.loads(rec_path.read_text())
    assert data["recording"]["began_at"] == 55
    # the actions from before recording began are in the timeline, from step 0
    assert [e["at"] for e in data["timeline"]][:3] == [0, 10, 10]
    assert replay_csv(rec_path, tmp_path / "replay.csv") == live


def test_captions_and_pause_points_are_replayed_at_their_ticks(tmp_path):
    rec_path = tmp_path / "session.toml"
    live_run(small_scenario(), rec_path)
    sc = load_scenario(rec_path)
    replay = Simulation(sc)
    pauses = []
    for _ in range(STEPS):
        if any(ev.pause for ev in replay.timeline.upcoming(replay.tick)):
            pauses.append(replay.tick)       # the runner holds here, before the step
        replay.step()
    assert replay.captions == [
        (10, 'B = 4, lr "0.3": watch \\ the ball'),
        (90, "after the reset"),
        (90, "the scenario's own caption"),
        (170, "logistic regression now"),
    ]
    assert pauses == [60]


def test_a_caption_is_one_line_of_text(tmp_path):
    sc = small_scenario()
    rec = Recorder.start(tmp_path / "c.toml", scenario=sc)
    rec.add(3, Caption("two\nlines\tand a bell\x07 — ünïcode"))
    assert load_scenario(tmp_path / "c.toml").timeline[0].caption == "two lines and a bell  — ünïcode"


def test_a_killed_session_leaves_a_file_that_replays_to_its_last_event(tmp_path):
    """No stop(): the terminal was closed. The file parses and replays to the last recorded tick."""
    rec_path = tmp_path / "killed.toml"
    live, _, _ = live_run(small_scenario(), rec_path, steps=130, stop=False)
    data = tomllib.loads(rec_path.read_text())
    assert data["recording"]["final_tick"] == 120            # the last action recorded was at tick 120
    assert "theta_sha256" not in data["recording"]
    replayed = replay_csv(rec_path, tmp_path / "replay.csv")
    assert replayed.splitlines() == live.splitlines()[:121]   # header + 120 steps, identical


def test_a_failed_rewrite_keeps_the_previous_file(tmp_path, monkeypatch):
    rec_path = tmp_path / "session.toml"
    rec = Recorder.start(rec_path, scenario=small_scenario())
    rec.add(5, actions.SetBatchSize(2))
    before = rec_path.read_text()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("bsim.atomic.os.replace", disk_full)
    with pytest.raises(RecordingError, match="No space left on device"):
        rec.add(9, actions.SetBatchSize(4))
    monkeypatch.undo()
    assert rec_path.read_text() == before
    assert load_scenario(rec_path).timeline[0].batch_size == 2
    assert [p.name for p in tmp_path.iterdir()] == ["session.toml"]   # no temporary file left behind


def test_an_unwritable_folder_is_a_recording_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordingError) as err:
        Recorder.start(blocker / "rec.toml", scenario=small_scenario())
    assert "rec.toml" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, Exception)


def test_a_folder_removed_while_recording_is_a_recording_error(tmp_path):
    folder = tmp_path / "talk"
    folder.mkdir()
    rec = Recorder.start(folder / "rec.toml", scenario=small_scenario())
    (folder / "rec.toml").unlink()
    folder.rmdir()
    with pytest.raises(RecordingError):
        rec.add(1, Caption("hello"))


def test_adding_after_stop_or_an_unknown_item_is_refused(tmp_path):
    sc = small_scenario()
    rec = Recorder.start(tmp_path / "r.toml", scenario=sc)
    with pytest.raises(RecordingError):
        rec.add(1, "faster please")
    rec.stop(Simulation(sc))
    with pytest.raises(RecordingError):
        rec.add(2, actions.SetBatchSize(3))


def test_data_paths_follow_the_recording_to_another_folder(tmp_path):
    data_dir, rec_dir = tmp_path / "data", tmp_path / "talks" / "monday"
    data_dir.mkdir()
    rec_dir.mkdir(parents=True)
    rows = ["x1,x2,y"] + [f"{i % 7 - 3},{(i * 5) % 11 - 5},{(i % 13) / 4}" for i in range(60)]
    (data_dir / "train.csv").write_text("\n".join(rows) + "\n")
    (data_dir / "scenario.toml").write_text(
        '[problem]\nkind = "linreg"\ndata = "train.csv"\n\n[optimizer]\nlr = 0.01\nbatch_size = 5\n')
    sc = load_scenario(data_dir / "scenario.toml")
    rec_path = rec_dir / "rec.toml"
    live, _, _ = live_run(sc, rec_path, steps=30, plan={12: [actions.SetBatchSize(20)]})
    assert 'data = "../../data/train.csv"' in rec_path.read_text()
    assert replay_csv(rec_path, tmp_path / "r.csv") == live


def test_taking_over_a_replay_records_what_really_happened(tmp_path):
    """Replay a recording, record meanwhile, take over at tick 100: the new recording replays the live run.

    Taking over drops the rest of the replayed timeline (as the runner does); the recorder
    reads the run's timeline, so the file is right while recording, and at stop.
    """
    first = tmp_path / "first.toml"
    live_run(small_scenario(), first)
    sc = load_scenario(first)
    sim = Simulation(sc)
    second = tmp_path / "second.toml"
    rec = Recorder.start(second, scenario=sc, actions=[], began_at=0, timeline=sim.timeline)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sim.frame(timing=False)
    for _ in range(160):
        if sim.tick == 100:
            sim.timeline.drop_from(sim.tick)
            sim.apply(actions.SetBatchSize(3))
            rec.add(sim.tick, actions.SetBatchSize(3))
        assert sim.step()
        writer.writerow(sim.frame(timing=False).csv_row())
    live = buf.getvalue()
    # the file as a killed terminal would leave it
    assert replay_csv(second, tmp_path / "partial.csv").splitlines() == live.splitlines()[:101]
    rec.stop(sim)
    assert replay_csv(second, tmp_path / "replay.csv") == live
    # the first recording's events after tick 100 (its problem switch at 150) are gone
    assert all(ev.at <= 100 for ev in load_scenario(second).timeline)


@pytest.mark.slow
def test_a_recorder_killed_mid_write_leaves_a_valid_file(tmp_path):
    """SIGKILL a process that rewrites its recording as fast as it can: the file is always whole."""
    import signal
    import subprocess
    import sys
    import time

    rec_path = tmp_path / "busy.toml"
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys
from bsim import actions
from bsim.actions import Caption, PausePoint
from bsim.recording import Recorder
from bsim.scenario import find_scenario
rec = Recorder.start({str(rec_path)!r}, scenario=find_scenario("default"))
tick = 0
while True:
    tick += 1
    rec.add(tick, Caption("x" * 2000 + str(tick)))
    if tick == 5:
        print("writing", flush=True)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        time.sleep(0.5)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    sc = load_scenario(rec_path)
    last = sc.timeline[-1]
    assert sc.recording["final_tick"] == last.at >= 5
    assert [ev.at for ev in sc.timeline] == list(range(1, last.at + 1))
    assert last.caption == "x" * 2000 + str(last.at)


def test_odd_characters_in_the_scenario_survive_a_recording(tmp_path):
    (tmp_path / "sc.toml").write_text('title = "bell \\u0007, tab \\t, quote \\" and \\\\"\n'
                                      'description = "line\\r\\nbreak \\u007f é"\n')
    sc = load_scenario(tmp_path / "sc.toml")
    Recorder.start(tmp_path / "rec.toml", scenario=sc).stop(Simulation(sc))
    again = load_scenario(tmp_path / "rec.toml")
    assert (again.title, again.description) == (sc.title, sc.description)
    assert again.title == 'bell \x07, tab \t, quote " and \\'
