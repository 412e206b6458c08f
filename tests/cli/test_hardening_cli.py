"""Nothing leaked, nothing hung, one clear line (issue 12), through the real command line.

Each case is what a careless or hostile user would try: a data file that is not a
CSV (/proc/self/environ, a shadow file), a bad cell holding a secret, /dev/zero or a
FIFO as a scenario, a problem too big for the machine, a singular synthetic X, a
duplicated column, an empty scenario, an --export folder whose parent is missing.
Every refusal is exit code 2 and exactly one line on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT
from support.cli import run_cli

import bsim.problems.csvdata as csvdata
import bsim.problems.memory as memory
from bsim.cli import main
from bsim.errors import MAX_TEXT_BYTES, quote

SECRET = "hunter2-S3CR3T-abcdefghijklmnopqrstuvwxyz"


def bsim(*argv, cwd=None, env=None, timeout=120):
    """``python -m bsim ARGV`` in a subprocess; (exit code, stdout, stderr)."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    p = subprocess.run([sys.executable, "-m", "bsim", *map(str, argv)], cwd=cwd, env=full_env,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("bsim: error: "), err
    assert "Traceback" not in err
    return err


def scenario(tmp_path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ leaks

@pytest.mark.slow
def test_proc_self_environ_as_data_prints_none_of_the_environment(tmp_path):
    sc = scenario(tmp_path, '[problem]\ndata = "/proc/self/environ"\n')
    code, _, err = bsim("run", sc, "--headless", "--steps", "2", env={"BSIM_TEST_SECRET": SECRET})
    one_error_line(code, err)
    assert "BSIM_TEST" not in err and SECRET[:6] not in err and "PYTHONPATH" not in err


def test_a_file_that_is_not_a_csv_never_has_a_line_quoted(tmp_path, capsys):
    """A shadow-like file reached through ../: its first line must not reach stderr, not even 12 characters."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "shadow").write_text(f"root:{SECRET}:19000:0:99999:7:::\ndaemon:*:19000\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    sc = scenario(tmp_path / "a" / "b", '[problem]\ndata = "../../etc/shadow"\n')
    code, _, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2")
    one_error_line(code, err)
    assert "root:" not in err and SECRET[:4] not in err and "none named y" in err


def test_a_bad_cell_is_quoted_to_12_characters(tmp_path, capsys):
    (tmp_path / "train.csv").write_text(f"x,y\n1,2\n3,{SECRET}\n")
    sc = scenario(tmp_path, '[problem]\ndata = "train.csv"\n')
    code, _, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2")
    one_error_line(code, err)
    assert f"train.csv:3: got {SECRET[:12]!r}..." in err
    assert SECRET[:13] not in err


def test_a_toml_string_value_is_cut_to_12_printable_characters(tmp_path, capsys):
    sc = scenario(tmp_path, f'device = "{SECRET}\\u001b[2J"\n')
    code, _, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2")
    one_error_line(code, err)
    assert f"s.toml:1: device: got {SECRET[:12]!r}..." in err
    assert SECRET[:13] not in err and "\x1b" not in err


def test_quote_keeps_at_most_12_printable_characters():
    assert quote("n/a") == "'n/a'"
    assert quote("x" * 40) == "'" + "x" * 12 + "'..."
    assert quote("a\x1b[2Jb\nc") == "'a?[2Jb?c'"
    assert quote(1.5) == "1.5" and quote(list(range(20))) == "[0, 1, 2, 3,..."


# ------------------------------------------------------------- what is read

@pytest.mark.slow
def test_dev_zero_as_a_scenario_is_refused_at_once(tmp_path):
    code, _, err = bsim("run", "/dev/zero", "--headless", "--steps", "2", timeout=60)
    assert "a device" in one_error_line(code, err)


@pytest.mark.slow
def test_a_fifo_as_a_scenario_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "s.toml"
    os.mkfifo(fifo)
    code, _, err = bsim("run", fifo, "--headless", "--steps", "2", timeout=60)   # before: blocked forever
    assert "a FIFO" in one_error_line(code, err)


def test_a_folder_as_a_scenario_or_a_recording_is_refused(tmp_path, capsys):
    (tmp_path / "d.toml").mkdir()
    code, _, err = run_cli(capsys, "run", tmp_path / "d.toml", "--headless", "--steps", "2")
    assert "a folder" in one_error_line(code, err)
    code, _, err = run_cli(capsys, "replay", tmp_path / "d.toml", "--headless")
    assert "a folder" in one_error_line(code, err)


def test_a_scenario_over_the_cap_is_refused_and_the_message_states_the_cap(tmp_path, capsys):
    big = tmp_path / "big.toml"
    with open(big, "wb") as fh:     # sparse: no disk used
        fh.truncate(MAX_TEXT_BYTES + 1)
    code, _, err = run_cli(capsys, "run", big, "--headless", "--steps", "2")
    assert f"larger than {MAX_TEXT_BYTES // 2**20} MiB" in one_error_line(code, err)


@pytest.mark.slow
def test_a_sweep_csv_that_is_a_device_is_refused():
    code, _, err = bsim("sweep", "--show", "/dev/zero", timeout=60)
    assert "a device" in one_error_line(code, err)


def test_a_data_csv_over_its_cap_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(csvdata, "MAX_DATA_BYTES", 64)
    (tmp_path / "train.csv").write_text("x,y\n" + "1,2\n" * 40)
    sc = scenario(tmp_path, '[problem]\ndata = "train.csv"\n')
    code = main(["run", str(sc), "--headless", "--steps", "2", "--metrics", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert "train.csv: larger than 64 bytes" in one_error_line(code, err)


# ---------------------------------------------------------------- memory

@pytest.mark.slow
def test_an_lstm_too_big_for_any_machine_is_refused_before_allocating(tmp_path):
    sc = scenario(tmp_path, 'dtype = "float32"\n[problem]\nkind = "lstm"\nhidden = 256\nseq_len = 256\n'
                            'n_train = 1000000\n')
    code, _, err = bsim("run", sc, "--headless", "--steps", "2", timeout=60)
    one_error_line(code, err)
    # 18 T H n_train float32 values (the full gradient) + 4 float64 copies of the sequences
    need = 18 * 256 * 256 * 10**6 * 4 + 4 * 10**6 * 257 * 8
    assert f"s.toml:6: problem.n_train: needs about {need / 1e9:.1f} GB" in err


def test_a_linear_problem_beyond_the_available_memory_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * 10**9)
    sc = scenario(tmp_path, "[problem]\ndim = 512\nn_train = 1000000\nn_test = 1000000\n")
    code = main(["run", str(sc), "--headless", "--steps", "2", "--metrics", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    one_error_line(code, err)
    need = 3 * 2 * 10**6 * 512 * 8 + 2 * 8 * 512 * 8     # 3 copies of the features, a batch's gradients
    assert f"s.toml:3: problem.n_train: needs about {need / 1e9:.1f} GB" in err and "16.0 GB available" in err
    assert not (tmp_path / "m.csv").exists()


def test_the_same_problem_fits_when_the_memory_is_there(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 10**9)
    sc = scenario(tmp_path, "[problem]\ndim = 512\nn_train = 1000000\nn_test = 1000000\n")
    assert memory.check_memory(__import__("bsim.scenario", fromlist=["load_scenario"]).load_scenario(sc)) is None


# ----------------------------------------------------------------- smaller

def test_a_singular_condition_names_its_key_and_line(tmp_path, capsys):
    sc = scenario(tmp_path, '[problem]\ndim = 4\ncondition = 1e300\n')
    code, _, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2")
    assert "s.toml:3: problem.condition: got 1e+300" in one_error_line(code, err)
    assert "linearly dependent" in err


def test_a_duplicated_column_is_refused_naming_the_file_and_the_column(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("x,y,y\n1,2,3\n4,5,6\n7,8,9\n")
    sc = scenario(tmp_path, '[problem]\ndata = "train.csv"\n')
    code, _, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2")
    assert "train.csv:1: got the column 'y' twice" in one_error_line(code, err)
    (tmp_path / "train.csv").write_text(f"{SECRET},y,{SECRET}\n1,2,3\n4,5,6\n7,8,9\n")
    code, _, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2")
    assert f"got the column {SECRET[:12]!r}... twice" in one_error_line(code, err)


def test_an_empty_scenario_says_it_runs_on_the_defaults(tmp_path, capsys):
    sc = scenario(tmp_path, "# nothing yet\n")
    code, out, err = run_cli(capsys, "run", sc, "--headless", "--steps", "2", "--metrics", tmp_path / "m.csv")
    assert code == 0, err
    assert err == (f"bsim: warning: {sc}: empty scenario: running on the defaults "
                   f"(linreg, dim 2, n_train 1024, lr 0.05, batch_size 8)\n")
    assert (tmp_path / "m.csv").exists()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    rec = d / "rec.toml"
    assert main(["run", "default", "--headless", "--steps", "5", "--metrics", str(d / "a.csv"), "--record", str(rec)]) == 0
    return rec


def test_export_and_metrics_both_refuse_a_missing_parent_folder(recording, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir"
    code = main(["replay", str(recording), "--export", str(target)])
    err = capsys.readouterr().err
    assert f"no folder {target.parent}" in one_error_line(code, err)
    assert not (tmp_path / "no").exists()                       # before: made every missing parent
    code = main(["replay", str(recording), "--headless", "--metrics", str(target / "m.csv")])
    err = capsys.readouterr().err
    assert f"no folder {target}" in one_error_line(code, err)


def test_export_makes_the_last_folder_when_its_parent_exists(recording, tmp_path):
    out = tmp_path / "frames"
    assert main(["replay", str(recording), "--export", str(out), "--every", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["step-000005.svg"]
