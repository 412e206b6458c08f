"""`bsim run --headless --record` and `bsim replay --headless`: same CSV, the check, and bad recordings."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from support.cli import run_cli

from bsim.errors import BsimInputError
from bsim.recording import load_recording

SCENARIO = """\
title = "two changes and a caption"
seed = 3

[problem]
kind = "linreg"
n_train = 200
n_test = 50
dim = 3

[optimizer]
lr = 0.04
batch_size = 8

[[timeline]]
at = 20
batch_size = 32
caption = "4x the batch"

[[timeline]]
at = 50
sampling = "iid"
lr = 0.08
"""


@pytest.fixture
def recorded(tmp_path, capsys):
    """A headless run of 90 steps, recorded; returns (recording path, its CSV)."""
    (tmp_path / "sc.toml").write_text(SCENARIO)
    rec, csv_a = tmp_path / "rec.toml", tmp_path / "a.csv"
    code, _, err = run_cli(capsys, "run", str(tmp_path / "sc.toml"), "--headless", "--steps", "90", "--every", "7",
                           "--no-timing", "--metrics", str(csv_a), "--record", str(rec), "--batch-size", "4")
    assert code == 0, err
    return rec, csv_a.read_text()


def test_headless_replay_gives_the_same_csv(recorded, tmp_path, capsys):
    rec, original = recorded
    table = tomllib.loads(rec.read_text())["recording"]
    assert table["final_tick"] == 90 and table["began_at"] == 0
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless", "--every", "7", "--no-timing",
                           "--metrics", str(tmp_path / "b.csv"))
    assert (code, err) == (0, "")       # the check agrees: nothing to say
    assert (tmp_path / "b.csv").read_text() == original
    # the override (--batch-size 4) is part of the recorded scenario
    assert original.splitlines()[1].split(",")[3] == "4"


def test_a_check_that_disagrees_says_so_with_both_values_and_goes_on(recorded, tmp_path, capsys):
    rec, original = recorded
    text = rec.read_text()
    table = tomllib.loads(text)["recording"]
    other = "0" * 64
    rec.write_text(text.replace(table["theta_sha256"], other).replace(
        f"train_loss = {table['train_loss']!r}", "train_loss = 1.5"))
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless", "--every", "7", "--no-timing",
                           "--metrics", str(tmp_path / "b.csv"))
    assert code == 0
    assert (tmp_path / "b.csv").read_text() == original   # it went on and wrote the whole CSV
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert repr(table["train_loss"]) in lines[0] and "1.5" in lines[0]
    assert table["theta_sha256"][:16] in lines[0] and other[:16] in lines[0]


def test_a_recording_from_another_device_names_it_in_the_notice(recorded, tmp_path, capsys):
    rec, _ = recorded
    text = rec.read_text().replace('device = "cpu"', 'device = "cuda"')
    rec.write_text(text.replace('train_loss = ', 'train_loss = 1', 1))
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless", "--metrics", str(tmp_path / "b.csv"))
    assert code == 0 and "recorded on device cuda" in err and "replayed on device cpu" in err


def test_a_diverging_run_replays_to_the_same_divergence(tmp_path, capsys):
    (tmp_path / "sc.toml").write_text(SCENARIO[: SCENARIO.index("[[timeline]]")])   # no lr event to rescue it
    rec = tmp_path / "rec.toml"
    code, _, err = run_cli(capsys, "run", str(tmp_path / "sc.toml"), "--headless", "--steps", "300", "--lr", "40",
                           "--no-timing", "--metrics", str(tmp_path / "a.csv"), "--record", str(rec))
    assert code == 3
    final = tomllib.loads(rec.read_text())["recording"]["final_tick"]
    assert final < 300
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless", "--no-timing", "--metrics", str(tmp_path / "b.csv"))
    assert code == 3 and "differs" not in err
    assert (tmp_path / "b.csv").read_text() == (tmp_path / "a.csv").read_text()
    # the app's replay stops at final_tick, before the failing step: its check agrees too
    from bsim.recording import compare_check
    from bsim.simulation import Simulation
    sc, info = load_recording(str(rec))
    sim = Simulation(sc)
    assert sim.run(final) == final and not sim.diverged
    assert compare_check(info.table, sim) is None


# ------------------------------------------------------------------ bad input

def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_one_line_error(code: int, err: str, fname: str, line: int | None):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bsim: error: ") and "Traceback" not in err
    where = f"{fname}:{line}:" if line is not None else f"{fname}:"
    assert where in err, err


@pytest.mark.parametrize("edit, needle, expect", [
    # a hand edit into nonsense: what is changed, the line it is on, what the message must say
    (('batch_size = 32', 'batch_size = "lots"'), 'batch_size = "lots"', "expected an integer"),
    (('began_at = 0', 'began_at = "yesterday"'), 'began_at = "yesterday"', "expected a step number"),
    (('began_at = 0', 'began_at = 0\nspeed = 2'), 'speed = 2', "unknown key"),
    (('theta_sha256 = "', 'theta_sha256 = "xyz'), 'theta_sha256', "sha256"),
    (('began_at = 0', 'began_at = 95'), 'began_at = 95', "final_tick"),
    (('[recording]\nformat = 1', '[recording]\nformat = 2'), 'format = 2', "newer"),
    (('format = 1', 'format = "one"'), 'format = "one"', "format version"),
])
def test_hand_edited_recordings_are_one_line_errors(recorded, capsys, edit, needle, expect):
    rec, _ = recorded
    text = rec.read_text()
    assert edit[0] in text
    text = text.replace(edit[0], edit[1], 1)
    rec.write_text(text)
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless")
    assert_one_line_error(code, err, str(rec), line_of(text, needle))
    assert expect in err


def test_an_incomplete_check_is_an_error(recorded, capsys):
    rec, _ = recorded
    text = "\n".join(line for line in rec.read_text().splitlines() if not line.startswith("train_loss")) + "\n"
    rec.write_text(text)
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless")
    assert_one_line_error(code, err, str(rec), line_of(text, "final_step ="))
    assert "missing train_loss" in err


def test_a_newer_format_names_the_version(recorded, capsys):
    rec, _ = recorded
    text = rec.read_text().replace("format = 1", "format = 7\nfuture_key = true")
    rec.write_text(text)
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless")
    assert_one_line_error(code, err, str(rec), line_of(text, "format = 7"))
    assert "format 7 is newer" in err and "unknown key" not in err


def test_every_truncation_parses_or_names_the_line(recorded):
    """Cut the file at every character: it either loads, or the error names the file and a line."""
    rec, _ = recorded
    text = rec.read_text()
    cut = rec.with_name("cut.toml")
    failures = 0
    for n in range(0, len(text), 3):
        cut.write_text(text[:n])
        try:
            load_recording(str(cut))
        except BsimInputError as exc:
            failures += 1
            msg = str(exc)
            assert msg.startswith(f"{cut}:") and msg.split(":")[1].isdigit(), msg
            assert "\n" not in msg
    assert failures > len(text) // 10      # many cuts are broken files, and each one said where


def test_a_truncated_recording_on_the_command_line(recorded, capsys):
    rec, _ = recorded
    text = rec.read_text()
    cut = text[: text.index("theta_sha256") + len('theta_sha256 = "b4')]
    rec.write_text(cut)
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless")
    assert_one_line_error(code, err, str(rec), len(cut.splitlines()))


def test_a_file_cut_before_its_recording_table(recorded, capsys):
    rec, _ = recorded
    text = rec.read_text()
    cut = text[: text.index("[recording]")]
    rec.write_text(cut)
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless")
    assert_one_line_error(code, err, str(rec), len(cut.splitlines()))
    assert "--steps" in err


def test_a_recording_pointing_at_a_missing_data_file(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("x,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(10)))
    (tmp_path / "sc.toml").write_text('[problem]\nkind = "linreg"\ndata = "train.csv"\n\n[optimizer]\nlr = 0.001\n')
    rec = tmp_path / "rec.toml"
    code, _, err = run_cli(capsys, "run", str(tmp_path / "sc.toml"), "--headless", "--steps", "5",
                           "--metrics", str(tmp_path / "a.csv"), "--record", str(rec))
    assert code == 0, err
    (tmp_path / "train.csv").unlink()
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless")
    assert_one_line_error(code, err, str(rec), line_of(rec.read_text(), "data ="))
    assert "train.csv" in err


def test_recording_into_an_unwritable_folder_on_the_command_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = run_cli(capsys, "run", "default", "--headless", "--steps", "3", "--metrics",
                           str(tmp_path / "a.csv"), "--record", str(tmp_path / "file" / "rec.toml"))
    assert code == 2 and err.count("\n") == 1 and "rec.toml" in err
    assert not (tmp_path / "a.csv").exists()      # it stopped before running


def test_conflicting_replay_flags(recorded, capsys):
    rec, _ = recorded
    code, _, err = run_cli(capsys, "replay", str(rec), "--headless", "--export", "out")
    assert code == 2 and err.count("\n") == 1


@pytest.mark.slow
def test_the_real_command_exits_2_without_a_traceback(recorded):
    rec, _ = recorded
    rec.write_text(rec.read_text().replace("format = 1", "format = 99"))
    proc = subprocess.run([sys.executable, "-m", "bsim", "replay", str(rec), "--headless"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "newer" in proc.stderr and "Traceback" not in proc.stderr
