"""The command line: every kind of bad input is one line on stderr naming the
file and line (or the flag) and what is expected, exit code 2, no traceback."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

import pytest
from support import DATA, ROOT
from support.cli import read_rows, run_cli


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# (scenario text, the start of the message after "bsim: error: <file>", words it must contain)
BAD_SCENARIOS = [
    # unknown keys and tables
    ('title = "x"\ncolour = "red"\n', ":2: colour: got an unknown key", "expected one of title"),
    ('[optimizer]\nlr = 0.1\nbatchsize = 4\n', ":3: optimizer.batchsize: got an unknown key", "batch_size"),
    ('[optimiser]\nlr = 0.1\n', ":1: optimiser: got an unknown key", "[optimizer]"),
    ('[[timeline]]\nat = 3\nbatch = 4\n', ":3: timeline[0].batch: got an unknown key", "batch_size"),
    # wrong types
    ('[optimizer]\nlr = "fast"\n', ":2: optimizer.lr: got 'fast', expected", "number > 0"),
    ('[optimizer]\nbatch_size = 8.5\n', ":2: optimizer.batch_size: got 8.5, expected", "integer >= 1"),
    ('[optimizer]\ndrop_last = 1\n', ":2: optimizer.drop_last: got 1, expected", "true or false"),
    ('seed = true\n', ":1: seed: got True, expected", "integer >= 0"),
    ('problem = 3\n', ":1: problem: got 3, expected", "table"),
    ('[[timeline]]\nat = "soon"\n', ":2: timeline[0].at: got 'soon', expected", "step number"),
    # out of range
    ('[optimizer]\nbatch_size = 0\n', ":2: optimizer.batch_size: got 0, expected", "integer >= 1"),
    ('[optimizer]\nlr = 0\n', ":2: optimizer.lr: got 0, expected", "> 0"),
    ('[optimizer]\nlr = -0.1\n', ":2: optimizer.lr: got -0.1, expected", "> 0"),
    ('[optimizer]\nlr = inf\n', ":2: optimizer.lr: got inf, expected", "finite"),
    ('[optimizer]\nlr = nan\n', ":2: optimizer.lr: got nan, expected", "finite"),
    ('[optimizer]\nmomentum = 1.0\n', ":2: optimizer.momentum: got 1.0, expected", "[0, 1)"),
    ('[optimizer]\nmomentum = -0.5\n', ":2: optimizer.momentum: got -0.5, expected", "[0, 1)"),
    ('[problem]\nn_train = 1\n', ":2: problem.n_train: got 1, expected", "from 2"),
    ('[problem]\ndim = 0\n', ":2: problem.dim: got 0, expected", "from 1 to 512"),
    ('[problem]\nkind = "logreg"\ndim = 8\nn_train = 4\n', ":4: problem.n_train: got 4, expected", "dim = 8"),
    ('[problem]\nkind = "linreg"\nl2 = 0.1\n', ":3: problem.l2: got 0.1, expected 0 for linreg", "logistic"),
    ('[[timeline]]\nat = -1\n', ":2: timeline[0].at: got -1, expected", ">= 0"),
    ('[[timeline]]\nat = 5\nbatch_size = 0\n', ":3: timeline[0].batch_size: got 0, expected", ">= 1"),
    ('[[timeline]]\nbatch_size = 4\n', ":1: timeline[0] has no 'at'", "step number"),
    # unknown choices
    ('[problem]\nkind = "mlp"\n', ":2: problem.kind: got 'mlp', expected one of linreg, logreg, lstm", ""),
    ('[optimizer]\nsampling = "random"\n', ":2: optimizer.sampling: got 'random', expected one of shuffle, iid, replacement", ""),
    ('[optimizer]\nlr_scaling = "cubic"\n', ":2: optimizer.lr_scaling: got 'cubic', expected one of none, linear, sqrt", ""),
    ('device = "tpu"\n', ":1: device: got 'tpu', expected one of auto, cpu, cuda, mps", ""),
    # TOML syntax
    ('[optimizer]\nlr = 0.1\nbatch_size = \n', ":3: not valid TOML", "column"),
    ('[optimizer\n', ":1: not valid TOML", "column"),
    ('[optimizer]\nlr = 0.1\nlr = 0.2\n', ":3: not valid TOML", "column"),
    # data files
    ('[problem]\ndata = "missing.csv"\n', ":2: problem.data: got 'missing.csv', expected a CSV file", "relative to the scenario"),
    ('[problem]\nkind = "lstm"\ndata = "x.txt"\n', ":3: problem.data: got 'x.txt', expected a text file (no such regular file", "relative to the scenario"),
]


@pytest.mark.parametrize("text,start,words", BAD_SCENARIOS)
def test_bad_scenario_is_one_line_with_file_and_line(capsys, tmp_path, text, start, words):
    path = write(tmp_path, "bad.toml", text)
    code, out, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "3")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"bsim: error: {path}{start}"), err
    assert words in err


# (CSV text, the file it is given as, message start after the CSV path, words)
BAD_CSV = [
    ("x1,x2,y\n1,2,3\n4,oops,6\n", "linreg", ":3: got 'oops'; expected a number", ""),
    ("x1,x2,y\n1,2,3\n4,5\n", "linreg", ":3: got 2 fields; expected 3", ""),
    ("x1,x2,y\n1,2,3\n4,5,inf\n", "linreg", ":3: got a value that is not finite", ""),
    ("x1,x2,target\n1,2,3\n", "linreg", ":1: got 3 column(s), none named y; expected a CSV whose header row names the target column y", ""),
    ("y\n1\n2\n", "linreg", ":1: got only the column y", ""),
    ("x,y\n1,0\n2,1\n3,0.5\n", "logreg", ":4: y: got 0.5; expected 0 or 1", ""),
    ("x,y\n1,2\n", "linreg", ": got 1 data rows; expected at least 2", ""),
    ("", "linreg", ":1: empty first line", ""),
]


@pytest.mark.parametrize("csv_text,kind,start,words", BAD_CSV)
def test_bad_csv_rows_name_the_csv_file_and_line(capsys, tmp_path, csv_text, kind, start, words):
    csv_path = write(tmp_path, "train.csv", csv_text)
    path = write(tmp_path, "s.toml", f'[problem]\nkind = "{kind}"\ndata = "train.csv"\n')
    code, out, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "3")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"bsim: error: {csv_path}{start}"), err


def test_non_utf8_csv_and_test_data_with_other_columns(capsys, tmp_path):
    (tmp_path / "train.csv").write_bytes(b"x,y\n1,2\n\xff\xfe,3\n")
    path = write(tmp_path, "s.toml", '[problem]\ndata = "train.csv"\n')
    code, _, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "2")
    assert code == 2 and "not UTF-8" in err and err.count("\n") == 1
    write(tmp_path, "train.csv", "a,b,y\n1,2,1\n2,1,3\n0,1,1\n")
    write(tmp_path, "test.csv", "a,y\n1,2\n")
    path = write(tmp_path, "s.toml", '[problem]\ndata = "train.csv"\ntest_data = "test.csv"\n')
    code, _, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "2")
    assert code == 2 and "test.csv:1: got 1 feature columns; expected 2" in err


def test_separable_logreg_without_l2_names_the_fix(capsys, tmp_path):
    csv_path = write(tmp_path, "train.csv", "x1,x2,y\n1,0.5,1\n2,1,1\n3,-1,1\n-1,0.2,0\n-2,1,0\n-3,-0.5,0\n")
    path = write(tmp_path, "s.toml", '[problem]\nkind = "logreg"\ndata = "train.csv"\n')
    code, _, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "2")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"bsim: error: {csv_path}: the two classes separate") and "l2 > 0" in err


@pytest.mark.parametrize("argv,words", [
    (["run", "--batch-size", "0"], "--batch-size: '0': expected an integer >= 1"),
    (["run", "--lr", "-1"], "--lr: '-1': expected a number > 0"),
    (["run", "--lr", "fast"], "--lr: 'fast': expected a number > 0"),
    (["run", "--momentum", "1"], "--momentum: '1': expected a number in [0, 1)"),
    (["run", "--sampling", "random"], "--sampling: invalid choice: 'random'"),
    (["run", "--problem", "mlp"], "--problem: invalid choice: 'mlp'"),
    (["run", "--steps", "0", "--headless"], "--steps: '0': expected an integer >= 1"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["run", "no-such-scenario", "--headless"], "no-such-scenario: no such scenario; expected a file path or one of"),
    (["run", "nope/missing.toml", "--headless"], "nope/missing.toml: no such file"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_flags_are_one_line(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("bsim: error: ")
    assert words in err, err


def test_unwritable_metrics_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--headless", "--steps", "2", "--metrics", str(tmp_path / "no" / "m.csv"))
    assert code == 2 and "no folder" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "run", "--headless", "--steps", "2", "--metrics", str(tmp_path))
    assert code == 2 and "is a folder" in err


def test_batch_size_above_n_is_clamped_with_one_warning(capsys, tmp_path):
    out_csv = tmp_path / "m.csv"
    code, _, err = run_cli(capsys, "run", "default", "--headless", "--steps", "3", "--batch-size", "5000",
                           "--metrics", str(out_csv))
    assert code == 0
    assert err.count("warning") == 1 and "5000" in err and "clamped to 1024" in err
    rows = read_rows(out_csv)
    assert [r["batch_size"] for r in rows] == ["1024"] * 3
    assert [r["epoch"] for r in rows] == ["1.0", "2.0", "3.0"]


def test_timeline_batch_size_above_n_warns_too(capsys, tmp_path):
    path = write(tmp_path, "s.toml", '[problem]\nn_train = 50\n[[timeline]]\nat = 2\nbatch_size = 80\n')
    code, _, err = run_cli(capsys, "run", str(path), "--headless", "--steps", "4", "--metrics", str(tmp_path / "m.csv"))
    assert code == 0 and "step 2" in err and "clamped to 50" in err
    rows = read_rows(tmp_path / "m.csv")
    # 16 of 50 seen when B becomes 50: the epoch ends with the 34 left, then full batches of 50
    assert [r["batch_size"] for r in rows] == ["8", "8", "34", "50"]


def test_divergence_exits_3_with_the_rows_so_far(capsys, tmp_path):
    out_csv = tmp_path / "m.csv"
    code, _, err = run_cli(capsys, "run", "default", "--headless", "--steps", "500", "--lr", "1e150",
                           "--metrics", str(out_csv))
    assert code == 3
    m = re.search(r"diverged at step (\d+)", err)
    assert m and "reset" in err and err.count("\n") == 1
    rows = read_rows(out_csv)
    # a row for every step before the one that left the finite numbers, each with a finite batch loss
    assert [int(r["step"]) for r in rows] == list(range(1, int(m.group(1))))
    assert all(abs(float(r["batch_loss"])) < float("inf") for r in rows)


def test_scenarios_lists_the_bundled_ones(capsys):
    code, out, _ = run_cli(capsys, "scenarios")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) >= 5
    names = [ln.split()[0] for ln in lines]
    for needed in ("default", "logreg", "lstm", "linear-scaling", "shuffle-vs-iid"):
        assert needed in names
    assert all(":" in ln for ln in lines)   # "name  Title: description"


def _python_m_bsim(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bsim", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.mark.slow
def test_python_m_bsim_bad_scenario_no_traceback(tmp_path):
    path = write(tmp_path, "bad.toml", "[optimizer]\nmomentum = 2\n")
    r = _python_m_bsim("run", str(path), "--headless", "--steps", "2")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr == f"bsim: error: {path}:2: optimizer.momentum: got 2, expected a number in [0, 1)\n"


@pytest.mark.slow
def test_python_m_bsim_bad_csv_and_run(tmp_path):
    write(tmp_path, "train.csv", "x,y\n1,2\n3,four\n")
    path = write(tmp_path, "s.toml", '[problem]\ndata = "train.csv"\n')
    r = _python_m_bsim("run", str(path), "--headless", "--steps", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "train.csv:3: got 'four'" in r.stderr
    # and a good run, relative to the scenario file from another folder
    r = _python_m_bsim("run", str(DATA / "csv-linreg.toml"), "--headless", "--steps", "5", "--no-timing", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(r.stdout.splitlines()))
    assert [r_["step"] for r_ in rows] == ["1", "2", "3", "4", "5"] and rows[-1]["test_loss"] != ""
