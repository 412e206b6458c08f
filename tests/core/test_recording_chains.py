"""The ensemble's rebuilds (the app's ``e``) are recorded and replayed: a session recorded through the
runner, with ``e`` pressed mid-run, replays headless to the same metrics CSV, chains' columns included.

The live rows are the runner's own frames (what the app draws), written with the
columns the headless replay writes; the replay is the real command line.
"""

from __future__ import annotations

import csv
import io
import tomllib

import pytest

from bsim import actions
from bsim.cli import main
from bsim.controls import ToggleRecording
from bsim.frame import CHAINS_COLUMNS, CSV_COLUMNS, csv_columns
from bsim.runner import Runner
from bsim.scenario import Event, find_scenario, load_scenario
from bsim.simulation import Simulation


def small_scenario():
    sc = find_scenario("default")
    sc.problem.n_train = 203          # 203 = 25 batches of 8 and 3 left: epochs end mid-batch
    sc.problem.n_test = 32
    sc.timeline = [Event(at=50, batch_size=29)]     # a scenario event while the chains run
    return sc


# tick -> what the user sends the runner between steps at that tick (CycleChains is the key e)
PLAN = {
    0: [ToggleRecording],
    20: [actions.CycleChains()],                       # e: 1 -> 64 chains, mid-epoch
    37: [actions.SetBatchSize(13)],
    61: [actions.CycleChains(), actions.SetSampling("iid")],   # e: 64 -> 256, then a setting at the same tick
    90: [actions.SetChains(5)],
    110: [actions.SetChains(1)],                       # the run alone again
    125: [actions.CycleChains()],                      # e: 1 -> 64
}
STEPS = 150


def live_session(tmp_path, plan=PLAN, steps=STEPS):
    """The app's runner driven step by step; returns (the recording's path, CSV text of its frames, runner)."""
    sc = small_scenario()
    rec_path = tmp_path / "session.toml"
    notices: list[str] = []
    runner = Runner(Simulation(sc), sc, threaded=False, timing=False, recordings_dir=tmp_path,
                    on_event=lambda kind, text: notices.append(f"{kind}: {text}"))
    runner.start()
    columns = csv_columns(256)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for _ in range(steps):
        for item in plan.get(runner.sim.tick, []):
            runner.submit(ToggleRecording(str(rec_path)) if item is ToggleRecording else item)
        assert runner.advance(1) == 1
        writer.writerow(runner.latest.csv_row(columns))
    runner.submit(ToggleRecording())            # R again: the recording stops and gets its check
    assert not [n for n in notices if n.startswith("error")], notices
    return rec_path, buf.getvalue(), runner


def replay_csv(path, out) -> str:
    assert main(["replay", str(path), "--headless", "--no-timing", "--metrics", str(out)]) == 0
    return out.read_text()


def test_a_session_with_e_replays_to_the_same_csv_chains_columns_included(tmp_path):
    rec_path, live, runner = live_session(tmp_path)
    events = tomllib.loads(rec_path.read_text())["timeline"]
    assert [(ev["at"], ev["chains"]) for ev in events if "chains" in ev] == [(20, 64), (61, 256), (90, 5),
                                                                             (110, 1), (125, 64)]
    replayed = replay_csv(rec_path, tmp_path / "replay.csv")
    assert replayed == live
    rows = list(csv.DictReader(io.StringIO(replayed)))
    assert len(rows) == STEPS
    # what a user sees in the file: no chains before e, then 64, 256, 5, none, 64 chains (steps count from 1)
    counts = {int(r["step"]): r["chains"] for r in rows}
    assert counts[20] == "" and counts[21] == "64" and counts[62] == "256" and counts[91] == "5"
    assert counts[111] == "" and counts[126] == "64" and counts[STEPS] == "64"
    assert all(float(r["chains_ball_radius"]) > 0 for r in rows if r["chains"])
    assert runner.sim.chains_since == 125


def test_replaying_without_the_chains_events_changes_only_the_chains_columns(tmp_path):
    """The events matter (they are not ignored) and touch nothing else: chain 0 is the run."""
    rec_path, live, _ = live_session(tmp_path)
    sc = load_scenario(rec_path)
    sc.timeline = [ev for ev in sc.timeline if ev.chains is None]
    sc.recording = None
    plain = tmp_path / "plain.toml"
    from bsim.scenario import scenario_to_toml
    plain.write_text(scenario_to_toml(sc))
    assert main(["run", str(plain), "--headless", "--no-timing", "--steps", str(STEPS),
                 "--metrics", str(tmp_path / "plain.csv")]) == 0
    live_rows = list(csv.reader(io.StringIO(live)))
    plain_rows = list(csv.reader(io.StringIO((tmp_path / "plain.csv").read_text())))
    own = len(live_rows[0]) - len(CHAINS_COLUMNS)
    assert [r[:own] for r in plain_rows] == [r[:own] for r in live_rows]
    assert len(plain_rows[0]) == own          # no chains anywhere: no chains columns


def test_e_during_a_replay_does_not_take_it_over(tmp_path):
    """e changes the chains, not the run: the replay goes on with its timeline (a batch size change does not)."""
    plan = {0: [ToggleRecording], 30: [actions.SetBatchSize(16)], 60: [actions.SetMomentum(0.5)]}
    rec_path, live, _ = live_session(tmp_path, plan=plan, steps=90)
    sc = load_scenario(rec_path)
    notices: list[str] = []
    runner = Runner(Simulation(sc), sc, threaded=False, timing=False, replay=True, replay_end=90,
                    on_event=lambda kind, text: notices.append(text))
    runner.start()
    runner.advance(10)
    runner.submit(actions.CycleChains())
    assert runner.replay and runner.sim.chains == 64
    assert not any("took over" in n for n in notices)
    runner.advance(55)
    live_rows = list(csv.reader(io.StringIO(live)))
    assert runner.sim.tick == 65 and runner.sim.momentum == 0.5      # the recording's event at 60 applied
    assert runner.latest.csv_row() == live_rows[65][:len(CSV_COLUMNS)]   # the run as recorded, bit for bit
    runner.submit(actions.SetBatchSize(4))
    assert not runner.replay and any("took over" in n for n in notices)


def test_a_timeline_chains_event_too_large_for_memory_is_one_line(tmp_path, capsys):
    path = tmp_path / "big.toml"
    path.write_text('title = "x"\n\n[[timeline]]\nat = 5\nchains = 10000000000000\n')
    code = main(["run", str(path), "--headless", "--steps", "10", "--metrics", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "the event at step 5: chains = 10000000000000: the ensemble would need about" in err, err


@pytest.mark.parametrize("value, words", [("0", "got 0, expected an integer >= 1"),
                                          ("2.5", "got 2.5, expected an integer >= 1")])
def test_a_bad_timeline_chains_value_is_one_line(tmp_path, capsys, value, words):
    path = tmp_path / "bad.toml"
    path.write_text(f'title = "x"\n\n[[timeline]]\nat = 5\nchains = {value}\n')
    code = main(["run", str(path), "--headless", "--steps", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err
