"""[schedule] through the real command line: a batch-size schedule in a run, a race lane and a replay, and
bad schedules as one line with exit code 2. (The three runs are slow: the statistics of 330 steps each.)"""

from __future__ import annotations

import math

import pytest
from support.cli import read_rows, read_table, run_cli

# N = 2048, B0 = 64: the doublings at epochs 5, 10, 15 reach 512 after 160 + 80 + 40 steps
DOUBLING = """title = "doubling"
seed = 1

[problem]
kind = "linreg"
n_train = 2048
n_test = 0
dim = 2

[optimizer]
lr = 0.05
batch_size = 64
sampling = "iid"

[schedule]
batch_size = { every_epochs = 5, factor = 2, max = 512 }
"""
STEPS = 330


def expected_batch_size(samples_before: int, n: int = 2048) -> int:
    """B for the step that starts after ``samples_before`` samples: 64 doubled at each 5 epochs passed, up to 512."""
    return min(512, 64 * 2 ** (samples_before // (5 * n)))


@pytest.fixture(scope="module")
def doubling_run(tmp_path_factory):
    """`bsim run FILE --headless --record`: the file, its CSV (every step, no timing) and its recording."""
    folder = tmp_path_factory.mktemp("doubling")
    path = folder / "doubling.toml"
    path.write_text(DOUBLING)
    return path, folder / "run.csv", folder / "rec.toml"


@pytest.mark.slow
def test_the_batch_size_column_doubles_every_five_epochs_up_to_512(doubling_run, capsys):
    path, csv_path, rec = doubling_run
    ran = run_cli(capsys, "run", path, "--headless", "--steps", STEPS, "--no-timing", "--metrics", csv_path,
                  "--record", rec)
    assert ran.code == 0, ran.err
    rows = read_rows(csv_path)
    sizes = [int(r["batch_size"]) for r in rows]
    for r, b in zip(rows, sizes):      # each step's B from the samples seen before it (a plain loop here)
        assert b == expected_batch_size(int(r["samples"]) - b), r["step"]
    changes = [(int(r["step"]), float(r["epoch"]) - b / 2048, b) for r, b, prev in zip(rows[1:], sizes[1:], sizes)
               if b != prev]
    assert [b for _, _, b in changes] == [128, 256, 512]
    assert [e for _, e, _ in changes] == [5.0, 10.0, 15.0]      # the first step of epochs 5, 10, 15
    assert [s for s, _, _ in changes] == [161, 241, 281]         # 5N/64 = 160 steps, then 80, then 40
    assert sizes[-1] == 512 and all(b <= 512 for b in sizes)


@pytest.mark.slow
def test_a_replay_of_the_scheduled_run_is_the_same_csv_byte_for_byte(doubling_run, capsys, tmp_path):
    path, csv_path, rec = doubling_run
    if not rec.exists():
        run_cli(capsys, "run", path, "--headless", "--steps", STEPS, "--no-timing", "--metrics", csv_path,
                "--record", rec)
    assert "[schedule]" in rec.read_text()
    again = tmp_path / "replay.csv"
    ran = run_cli(capsys, "replay", rec, "--headless", "--no-timing", "--metrics", again)
    assert ran.code == 0 and "differs" not in ran.err, ran.err
    assert again.read_bytes() == csv_path.read_bytes()


@pytest.mark.slow
def test_a_race_lane_follows_the_scenarios_schedule_as_the_run_does(doubling_run, capsys, tmp_path):
    path, csv_path, rec = doubling_run
    if not csv_path.exists():
        run_cli(capsys, "run", path, "--headless", "--steps", STEPS, "--no-timing", "--metrics", csv_path)
    race_csv = tmp_path / "race.csv"
    ran = run_cli(capsys, "race", path, "--batch-sizes", "64", "--headless", "--steps", STEPS, "--no-timing",
                  "--metrics", race_csv)
    assert ran.code == 0, ran.err
    lane = read_table(race_csv)
    assert lane[0][0] == "lane" and {row[0] for row in lane[1:]} == {"64"}
    assert [row[1:] for row in lane] == read_table(csv_path)       # the lane's rows are the run's rows


BAD = [
    ("batch_size = { every_epochs = 5, factor = 0 }", "schedule.batch_size.factor: got 0, expected a finite number > 0"),
    ("lr = { every_epochs = 5, factor = -0.5 }", "schedule.lr.factor: got -0.5, expected a finite number > 0"),
    ("batch_size = { every_epochs = 5, factor = 2, max = 4 }",
     "schedule.batch_size.max: got 4, expected at least the starting batch size 8"),
    ("lr = { warmup_epochs = 50.0 }", "schedule.lr.warmup_epochs: got 50 epochs, longer than the run (100 steps"),
    ('batch_size = "adaptive"\nadaptive = { theta = 0 }', "schedule.adaptive.theta: got 0, expected a finite number > 0"),
    ('batch_size = "adaptive"\nadaptive = { theta = -1.5 }', "schedule.adaptive.theta: got -1.5, expected a finite"),
    ('batch_size = "grow"', "schedule.batch_size: got 'grow', expected \"adaptive\" or a table"),
]


@pytest.mark.parametrize("body,says", BAD, ids=[b[1].split(":")[0] + str(i) for i, b in enumerate(BAD)])
def test_a_bad_schedule_is_one_line_and_exit_2(tmp_path, capsys, body, says):
    path = tmp_path / "bad.toml"
    path.write_text(f"seed = 0\n\n[problem]\nn_train = 1024\n\n[optimizer]\nbatch_size = 8\n\n[schedule]\n{body}\n")
    out = tmp_path / "m.csv"
    ran = run_cli(capsys, "run", path, "--headless", "--steps", 100, "--metrics", out)
    err = ran.err.strip()
    assert ran.code == 2 and "\n" not in err and "Traceback" not in err, err
    line = 10 + (1 if body.startswith('batch_size = "adaptive"') else 0)
    assert err.startswith("bsim: error: ") and f"bad.toml:{line}: {says}" in err, err
    assert not out.exists()


def test_race_lanes_by_schedule_need_names_the_scenario_has(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(DOUBLING)
    ran = run_cli(capsys, "race", path, "--lanes", "decay-lr,grow-batch", "--headless", "--steps", 5)
    assert ran.code == 2 and ran.err.count("\n") == 1 and "--lanes: 'decay-lr' is not a schedule" in ran.err
    ran = run_cli(capsys, "race", "grow-batch", "--lanes", "decay-lr", "--batch-sizes", "8", "--headless",
                  "--steps", 5)
    assert ran.code == 2 and "both --batch-sizes and --lanes" in ran.err


def test_expected_batch_size_is_a_plain_doubling():
    """The test's own reference: 64 at epoch 0-5, 128 from epoch 5, ..., 512 from epoch 15 on."""
    assert [expected_batch_size(e * 2048) for e in (0, 4, 5, 9, 10, 15, 40)] == [64, 64, 128, 128, 256, 512, 512]
    assert math.log2(512 // 64) == 3


ADAPTIVE = """title = "adaptive"
seed = 4

[problem]
kind = "linreg"
n_train = 512
n_test = 0
dim = 2

[optimizer]
lr = 0.1
batch_size = 4
sampling = "iid"

[schedule]
batch_size = "adaptive"
adaptive = { test = "norm", theta = 1.0, window = 8 }
"""


@pytest.mark.slow
def test_adaptive_growths_are_recorded_events_that_a_replay_follows(tmp_path, capsys):
    """Each growth is a [[timeline]] event of the recording; the replay writes the same CSV (batch_test included),
    and follows the recorded growths even when the file's theta would test otherwise."""
    path = tmp_path / "adaptive.toml"
    path.write_text(ADAPTIVE)
    run_csv, rec = tmp_path / "run.csv", tmp_path / "rec.toml"
    ran = run_cli(capsys, "run", path, "--headless", "--steps", 200, "--no-timing", "--metrics", run_csv, "--record", rec)
    assert ran.code == 0, ran.err
    rows = read_rows(run_csv)
    sizes = [int(r["batch_size"]) for r in rows]
    grown_at = [int(r["step"]) - 1 for r, b, prev in zip(rows[1:], sizes[1:], sizes) if b != prev]   # ticks
    assert len(grown_at) >= 2 and all(b >= a for a, b in zip(sizes, sizes[1:]))
    assert rows[0]["batch_test"] == "" and rows[-1]["batch_test"] != ""
    from bsim.scenario import load_scenario
    events = load_scenario(rec).timeline
    assert [(ev.at, ev.batch_size) for ev in events] == [(t, sizes[t]) for t in grown_at]
    again = tmp_path / "replay.csv"
    ran = run_cli(capsys, "replay", rec, "--headless", "--no-timing", "--metrics", again)
    assert ran.code == 0 and "differs" not in ran.err, ran.err
    assert again.read_bytes() == run_csv.read_bytes()
    edited = tmp_path / "edited.toml"      # a theta that would never grow B: the replay still follows the events
    edited.write_text(rec.read_text().replace("theta = 1.0", "theta = 1000.0"))
    third = tmp_path / "edited.csv"
    ran = run_cli(capsys, "replay", edited, "--headless", "--no-timing", "--metrics", third)
    assert ran.code == 0, ran.err
    assert [r["batch_size"] for r in read_rows(third)] == [r["batch_size"] for r in rows]


LANES = """title = "lanes"
seed = 0

[problem]
kind = "linreg"
n_train = 256
n_test = 0
dim = 2

[optimizer]
lr = 0.05
batch_size = 8
sampling = "iid"

[schedule.lane.decay-lr]
lr = { every_epochs = 2, factor = 0.5 }

[schedule.lane.grow-batch]
batch_size = { every_epochs = 2, factor = 2 }
"""


@pytest.mark.slow
def test_a_race_of_schedules_names_its_lanes_and_replays_byte_for_byte(tmp_path, capsys):
    path, out, rec, again = (tmp_path / n for n in ("lanes.toml", "race.csv", "race-rec.toml", "again.csv"))
    path.write_text(LANES)
    ran = run_cli(capsys, "race", path, "--lanes", "decay-lr,grow-batch", "--headless", "--samples", 2560,
                  "--every", 8, "--no-timing", "--metrics", out, "--record", rec)
    assert ran.code == 0, ran.err
    rows = read_rows(out)
    last = {r["lane"]: r for r in rows}
    assert set(last) == {"decay-lr", "grow-batch"}
    assert last["decay-lr"]["batch_size"] == "8" and float(last["decay-lr"]["lr"]) == 0.05 / 2 ** 4
    assert last["grow-batch"]["batch_size"] == "128" and float(last["grow-batch"]["lr"]) == 0.05
    assert int(last["grow-batch"]["step"]) < int(last["decay-lr"]["step"]) == 320    # the same 10 epochs
    assert 'lane_names = ["decay-lr", "grow-batch"]' in rec.read_text()
    ran = run_cli(capsys, "replay", rec, "--headless", "--every", 8, "--no-timing", "--metrics", again)
    assert ran.code == 0 and "differs" not in ran.err, ran.err
    assert again.read_bytes() == out.read_bytes()
