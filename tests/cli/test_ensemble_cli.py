"""--chains K and chains = K on the real command line: the run's own columns stay byte-identical,
the chains' columns come last, and bad K is one line with exit code 2."""

from __future__ import annotations

import pytest
from support.cli import read_table, run_cli

from bsim.frame import CHAINS_COLUMNS, CSV_COLUMNS

SCENARIO = """title = "chains"
seed = 3

[problem]
kind = "{kind}"
n_train = 203

[optimizer]
lr = {lr}
batch_size = 8
sampling = "{sampling}"
drop_last = {drop_last}

[[timeline]]
at = 17
batch_size = 29

[[timeline]]
at = 30
momentum = 0.6

[[timeline]]
at = 41
sampling = "iid"

[[timeline]]
at = 52
sampling = "shuffle"
lr = {lr2}

[[timeline]]
at = 60
reset = true

[[timeline]]
at = 70
batch_size = 5
"""


@pytest.mark.parametrize("kind, lr, sampling, drop_last", [
    ("linreg", 0.05, "shuffle", "false"), ("linreg", 0.1, "replacement", "true"), ("logreg", 0.5, "shuffle", "true"),
    ("lstm", 0.2, "shuffle", "false"),
])
def test_chains_leave_the_runs_columns_byte_identical(capsys, tmp_path, kind, lr, sampling, drop_last):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(kind=kind, lr=lr, lr2=lr / 2, sampling=sampling, drop_last=drop_last))
    plain, chains = tmp_path / "plain.csv", tmp_path / "chains.csv"
    steps = "40" if kind == "lstm" else "90"
    common = ("run", str(path), "--headless", "--steps", steps, "--no-timing", "--every", "3")
    assert run_cli(capsys, *common, "--metrics", str(plain)).code == 0
    assert run_cli(capsys, *common, "--metrics", str(chains), "--chains", "7").code == 0
    a, b = read_table(plain), read_table(chains)
    assert a[0] == list(CSV_COLUMNS) and b[0] == list(CSV_COLUMNS + CHAINS_COLUMNS)
    assert len(a) == len(b) > 10
    n = len(CSV_COLUMNS)
    assert [row[:n] for row in b] == a                         # the run's own cells, byte for byte
    assert all(row[n] == "7" and float(row[n + 1]) > 0 and float(row[n + 2]) > 0 for row in b[1:])
    assert chains.read_text().startswith(plain.read_text().split("\n")[0])


def test_scenario_chains_key_and_replay_flag(capsys, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("chains = 5\n" + SCENARIO.format(kind="linreg", lr=0.05, lr2=0.02, sampling="shuffle",
                                                     drop_last="false"))
    out, rec = tmp_path / "a.csv", tmp_path / "rec.toml"
    code, _, _ = run_cli(capsys, "run", str(path), "--headless", "--steps", "80", "--no-timing", "--metrics",
                         str(out), "--record", str(rec))
    assert code == 0
    rows = read_table(out)
    assert rows[0][-len(CHAINS_COLUMNS):] == list(CHAINS_COLUMNS) and rows[-1][len(CSV_COLUMNS)] == "5"
    assert "chains = 5" in rec.read_text()                     # the recording keeps K
    again, single = tmp_path / "b.csv", tmp_path / "c.csv"
    assert run_cli(capsys, "replay", str(rec), "--headless", "--no-timing", "--metrics", str(again)).code == 0
    assert read_table(again) == rows                             # chains included: deterministic
    assert run_cli(capsys, "replay", str(rec), "--headless", "--no-timing", "--chains", "1",
                   "--metrics", str(single)).code == 0
    assert read_table(single) == [row[:len(CSV_COLUMNS)] for row in rows]


def test_a_recording_without_chains_has_no_chains_key(capsys, tmp_path):
    rec = tmp_path / "rec.toml"
    assert run_cli(capsys, "run", "--headless", "--steps", "5", "--no-timing", "--metrics", str(tmp_path / "a.csv"),
                   "--record", str(rec)).code == 0
    assert "chains" not in rec.read_text()


@pytest.mark.parametrize("value, words", [
    ("0", "--chains: '0': expected an integer >= 1"), ("-3", "--chains: '-3': expected an integer >= 1"),
    ("many", "--chains: 'many': expected an integer >= 1"),
    ("1000000000000", "--chains 1000000000000: the ensemble would need about"),
])
@pytest.mark.parametrize("command", ["run", "replay"])
def test_bad_chains_flag_is_one_line(capsys, tmp_path, value, words, command):
    target = "default"
    if command == "replay":
        target = str(tmp_path / "rec.toml")
        assert run_cli(capsys, "run", "--headless", "--steps", "3", "--metrics", str(tmp_path / "a.csv"),
                       "--record", target).code == 0
    code, _out, err = run_cli(capsys, command, target, "--headless", "--steps", "3", "--chains", value,
                             "--metrics", str(tmp_path / "b.csv"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("bsim: error: "), err
    assert words in err, err
    assert not (tmp_path / "b.csv").exists()


@pytest.mark.parametrize("value, words", [
    ("0", ":2: chains: got 0, expected an integer >= 1"), ("-4", ":2: chains: got -4, expected an integer >= 1"),
    ("2.5", ":2: chains: got 2.5, expected an integer >= 1"), ('"8"', ":2: chains: got '8', expected"),
    ("10000000000000", ":2: chains = 10000000000000: the ensemble would need about"),
])
def test_bad_chains_key_is_one_line_with_file_and_line(capsys, tmp_path, value, words):
    path = tmp_path / "bad.toml"
    path.write_text(f'title = "x"\nchains = {value}\n')
    code, _out, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "3")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"bsim: error: {path}{words}"), err
    assert "expected" in err
