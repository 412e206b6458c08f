"""`bsim race --headless`: each lane's rows equal `bsim run --batch-size B --headless` at the same steps."""

import pytest
from support.cli import read_table

from bsim.cli import main


def _lanes(path):
    """lane -> (header, rows) of the race's long-form CSV, the lane column taken off."""
    rows = read_table(path)
    header = rows[0]
    assert header[0] == "lane"
    lanes = {}
    for row in rows[1:]:
        lanes.setdefault(int(row[0]), []).append(row[1:])
    return header[1:], lanes


def _single(tmp_path, scenario, batch_size, steps, extra=()):
    out = tmp_path / f"single-{batch_size}.csv"
    code = main(["run", scenario, "--batch-size", str(batch_size), "--headless", "--no-timing",
                 "--steps", str(steps), "--metrics", str(out), *extra])
    return code, read_table(out)


CASES = [
    # (scenario, batch sizes, budget, extra flags of both commands)
    ("default", (8, 100), ("--steps", "60"), ("--every", "7")),
    ("default", (8, 100), ("--samples", "1500"), ("--sampling", "iid", "--every", "5")),
    ("logreg", (16, 64), ("--samples", "1100"), ()),
    ("logreg", (8, 32), ("--steps", "30"), ("--sampling", "iid")),
    ("default", (4, 64), ("--samples", "700"), ("--chains", "4", "--every", "3")),
    # the LSTM's chains through the C kernel, which the lanes share while their batch sizes alternate
    ("lstm", (8, 32), ("--steps", "12"), ("--chains", "3", "--every", "4")),
    # the character LSTM (issue 21): one-hot inputs, softmax read-out, its chains through the torch code
    pytest.param("char-lstm", (8, 32), ("--steps", "6"), ("--chains", "2", "--every", "3"), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("scenario,sizes,budget,extra", CASES)
def test_each_lane_equals_the_single_run_cell_for_cell(tmp_path, scenario, sizes, budget, extra):
    race_csv = tmp_path / "race.csv"
    code = main(["race", scenario, "--batch-sizes", ",".join(map(str, sizes)), "--headless", "--no-timing",
                 *budget, "--metrics", str(race_csv), *extra])
    assert code == 0
    header, lanes = _lanes(race_csv)
    assert list(lanes) == list(sizes)
    for b in sizes:
        last_step = int(lanes[b][-1][0])
        if budget[0] == "--samples":     # it ran until it had seen at least N samples, and no further
            n = int(budget[1])
            samples = int(lanes[b][-1][header.index("samples")])
            assert samples >= n > samples - b
        else:
            assert last_step == int(budget[1])
        code, single = _single(tmp_path, scenario, b, last_step, extra)
        assert code == 0
        assert single[0] == header
        assert lanes[b] == single[1:], f"lane {b}"
    if scenario == "logreg":
        assert all(row[header.index("train_acc")] for row in lanes[sizes[0]])
    if "--chains" in extra:
        assert header[-4:] == ["chains", "chains_ball_radius", "chains_train_loss", "chains_ball_radius_epoch"]


def test_rows_come_in_the_lockstep_order_and_the_csv_is_the_same_twice(tmp_path):
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for path in paths:
        assert main(["race", "default", "--batch-sizes", "8,64,512", "--headless", "--no-timing",
                     "--samples", "2048", "--metrics", str(path)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    rows = read_table(paths[0])[1:]
    samples = [int(r[3]) for r in rows]
    lanes = [int(r[0]) for r in rows]
    # by samples: a row's lane was the furthest behind when it stepped (its samples less one batch)
    starts = [s - b for s, b in zip(samples, lanes)]
    assert starts == sorted(starts)


def test_timing_gives_each_lane_its_own_rate(tmp_path):
    out = tmp_path / "race.csv"
    assert main(["race", "default", "--batch-sizes", "8,256", "--headless", "--steps", "40",
                 "--metrics", str(out), "--every", "40"]) == 0
    header, lanes = _lanes(out)
    col = header.index("samples_per_sec")
    rates = {b: float(rows[-1][col]) for b, rows in lanes.items()}
    assert all(r > 0 for r in rates.values())
    assert rates[256] > rates[8]       # 32x the samples per step for much less than 32x the time


def test_a_diverged_lane_stops_with_exit_3_and_its_rows_are_the_single_runs(tmp_path):
    out, rec, again = tmp_path / "race.csv", tmp_path / "race.toml", tmp_path / "again.csv"
    code = main(["race", "default", "--batch-sizes", "8,1024", "--lr-rule", "linear", "--by", "steps",
                 "--headless", "--no-timing", "--steps", "400", "--every", "10", "--metrics", str(out),
                 "--record", str(rec)])
    assert code == 3
    assert main(["replay", str(rec), "--headless", "--no-timing", "--every", "10", "--metrics", str(again)]) == 3
    assert again.read_bytes() == out.read_bytes()
    _, lanes = _lanes(out)
    assert lanes[8][-1][0] == "400"
    assert 0 < int(lanes[1024][-1][0]) < 400
    code, single = _single(tmp_path, "default", 1024, 400, ["--lr", repr(0.05 * 1024 / 8), "--every", "10"])
    assert code == 3 and lanes[1024] == single[1:]


def test_a_record_replays_to_the_same_csv_byte_for_byte(tmp_path, capsys):
    rec, first, again = tmp_path / "race.toml", tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["race", "logreg", "--batch-sizes", "8,64,200", "--headless", "--no-timing", "--samples", "900",
                 "--every", "4", "--metrics", str(first), "--record", str(rec)]) == 0
    text = rec.read_text()
    assert "[race]" in text and "batch_sizes = [8, 64, 200]" in text
    capsys.readouterr()
    assert main(["replay", str(rec), "--headless", "--no-timing", "--every", "4", "--metrics", str(again)]) == 0
    assert again.read_bytes() == first.read_bytes()
    assert "warning" not in capsys.readouterr().err       # the check matched


def test_a_replay_that_ends_elsewhere_says_so(tmp_path, capsys):
    rec = tmp_path / "race.toml"
    assert main(["race", "default", "--batch-sizes", "8,64", "--headless", "--no-timing", "--steps", "20",
                 "--metrics", str(tmp_path / "a.csv"), "--record", str(rec)]) == 0
    text = rec.read_text()
    rec.write_text(text.replace("seed = 0", "seed = 1"))
    capsys.readouterr()
    assert main(["replay", str(rec), "--headless", "--no-timing", "--metrics", str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert "lane B=8 differs from the recording" in err and "lane B=64 differs" in err


def test_interrupted_race_keeps_each_lanes_row_at_the_step_it_reached(tmp_path):
    from bsim.race.headless import RaceRows
    from bsim.race.race import Race
    from bsim.scenario import find_scenario

    class StopAfter:
        def __init__(self, n):
            self.n = n

        @property
        def requested(self):
            self.n -= 1
            return self.n < 0

    race = Race(find_scenario("default"), [8, 64])
    race.set_limit("steps", 1000)
    with open(tmp_path / "race.csv", "w", newline="") as fh:
        RaceRows(race, fh, every=10, timing=False, stop=StopAfter(75)).run()
    _, lanes = _lanes(tmp_path / "race.csv")
    for lane in race.lanes:
        rows = lanes[lane.batch_size]
        assert 0 < lane.steps < 1000 and rows[-1][0] == str(lane.steps)
        code, single = _single(tmp_path, "default", lane.batch_size, lane.steps, ["--every", "10"])
        assert rows == single[1:]


def test_a_lane_under_an_lr_rule_is_bsim_run_at_its_scaled_lr(tmp_path):
    out = tmp_path / "race.csv"
    assert main(["race", "default", "--batch-sizes", "8,64", "--lr-rule", "sqrt", "--headless", "--no-timing",
                 "--steps", "25", "--metrics", str(out)]) == 0
    _, lanes = _lanes(out)
    lr = 0.05 * (64 / 8) ** 0.5          # lr0 sqrt(B / B0), B0 = 8 the scenario's batch size
    code, single = _single(tmp_path, "default", 64, 25, ["--lr", repr(lr)])
    assert code == 0 and lanes[64] == single[1:]
    assert float(lanes[64][0][4]) == lr and float(lanes[8][0][4]) == 0.05


def test_the_screens_recording_replays_headless_to_where_each_lane_stood(tmp_path, capsys):
    from bsim.controls import Step, ToggleRecording
    from bsim.race.controls import AddLane
    from bsim.race.race import Race
    from bsim.race.runner import RaceRunner
    from bsim.scenario import find_scenario

    rec = tmp_path / "screen.toml"
    race = Race(find_scenario("default"), [8, 64])
    runner = RaceRunner(race, threaded=False, paused=True)
    runner.start()
    runner.submit(Step())
    runner.submit(AddLane(32))
    runner.submit(ToggleRecording(str(rec)))
    assert runner.latest.runner.recording == str(rec)
    runner.submit(Step())
    runner.submit(Step())
    runner.stop()                          # a recording in progress is written where the race stands
    assert runner.recording is None
    reached = [lane.steps for lane in race.lanes]
    out = tmp_path / "replay.csv"
    capsys.readouterr()
    assert main(["replay", str(rec), "--headless", "--no-timing", "--metrics", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err        # every lane's check matched
    _, lanes = _lanes(out)
    assert [int(rows[-1][0]) for rows in lanes.values()] == reached and list(lanes) == [8, 64, 32]


def test_a_single_run_of_a_race_recording_records_a_single_run(tmp_path):
    rec, single = tmp_path / "race.toml", tmp_path / "single.toml"
    assert main(["race", "default", "--batch-sizes", "8,64", "--headless", "--no-timing", "--steps", "5",
                 "--metrics", str(tmp_path / "a.csv"), "--record", str(rec)]) == 0
    assert main(["run", str(rec), "--headless", "--no-timing", "--steps", "5", "--metrics", str(tmp_path / "b.csv"),
                 "--record", str(single)]) == 0
    assert "[race]" not in single.read_text()
    assert main(["replay", str(single), "--headless", "--no-timing", "--metrics", str(tmp_path / "c.csv")]) == 0
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
