"""Headless runs: the metrics CSV (columns, rows, determinism), the atomic
file and Ctrl-C, the progress bar."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from support import DATA, ROOT
from support.cli import read_table

from bsim.atomic import atomic_open
from bsim.cli import main
from bsim.headless import run_headless, write_rows
from bsim.progress import Progress
from bsim.scenario import find_scenario
from bsim.simulation import Simulation

# the metrics-CSV contract (docs/usage.md, "The metrics CSV"): these columns first, in this order (more may follow)
CONTRACT_COLUMNS = ["step", "epoch", "samples", "batch_size", "lr", "batch_loss", "train_loss", "test_loss",
                    "grad_norm", "full_grad_norm", "cos_to_full", "grad_noise", "grad_noise_theory",
                    "noise_scale", "dist_to_opt", "ball_radius_theory", "samples_per_sec"]
FILLED_NOW = ["step", "epoch", "samples", "batch_size", "lr", "batch_loss", "train_loss", "test_loss",
              "grad_norm", "full_grad_norm", "dist_to_opt", "samples_per_sec"]


def headless(capsys, *argv):
    code = main(["run", *argv, "--headless"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["linear-scaling", "--steps", "2500", "--every", "100"],     # a timeline event at 2000
    ["shuffle-vs-iid", "--steps", "4100", "--every", "50", "--momentum", "0.5"],
    ["lstm", "--steps", "40", "--every", "10"],
    [str(DATA / "csv-linreg.toml"), "--steps", "300", "--every", "7", "--sampling", "replacement"],
])
def test_two_runs_give_byte_identical_csvs(capsys, tmp_path, args):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert headless(capsys, *args, "--no-timing", "--metrics", str(a))[0] == 0
    assert headless(capsys, *args, "--no-timing", "--metrics", str(b))[0] == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(read_table(a)) > 2


def test_columns_rows_and_filled_values(capsys, tmp_path):
    out = tmp_path / "m.csv"
    code, _, err = headless(capsys, "default", "--steps", "1000", "--every", "300", "--metrics", str(out))
    assert code == 0 and err == ""
    rows = read_table(out)
    assert rows[0][:len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    table = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["step"] for r in table] == ["300", "600", "900", "1000"]   # every K, and the last step
    for r in table:
        for col in FILLED_NOW:
            assert r[col] != "", col
        step = int(r["step"])
        assert int(r["samples"]) == 8 * step and float(r["epoch"]) == 8 * step / 1024
        assert r["batch_size"] == "8" and float(r["lr"]) == 0.05
        assert float(r["samples_per_sec"]) > 0
    # SGD reaches the noise ball: far closer to theta* than the start (theta = 0)
    sim = Simulation(find_scenario("default"))
    start = float(sim.problem.theta_star.norm())
    assert float(table[-1]["dist_to_opt"]) < 0.25 * start


def test_lstm_has_no_distance_to_an_optimum(capsys, tmp_path):
    out = tmp_path / "m.csv"
    assert headless(capsys, "lstm", "--steps", "20", "--every", "10", "--metrics", str(out))[0] == 0
    table = [dict(zip(read_table(out)[0], r)) for r in read_table(out)[1:]]
    assert [r["dist_to_opt"] for r in table] == ["", ""]
    assert all(r["train_loss"] and r["test_loss"] and r["full_grad_norm"] for r in table)


def test_no_timing_leaves_samples_per_sec_empty_and_stdout_without_metrics(capsys):
    code, out, _ = headless(capsys, "default", "--steps", "3", "--no-timing")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3
    assert [r["samples_per_sec"] for r in rows] == ["", "", ""]
    assert [r["step"] for r in rows] == ["1", "2", "3"]


def test_csv_data_without_test_file_leaves_test_loss_empty(capsys, tmp_path):
    out = tmp_path / "m.csv"
    assert headless(capsys, str(DATA / "csv-logreg.toml"), "--steps", "16", "--every", "8", "--metrics", str(out))[0] == 0
    table = [dict(zip(read_table(out)[0], r)) for r in read_table(out)[1:]]
    assert [r["test_loss"] for r in table] == ["", ""]
    assert [r["epoch"] for r in table] == ["1.0", "2.0"]          # 64 rows, B = 8


class _Interrupt:
    """An observer that presses Ctrl-C after ``at`` steps (and can look at the file meanwhile)."""

    def __init__(self, at, check=None):
        self.at, self.check = at, check

    def __call__(self, sim):
        if self.check:
            self.check(sim)
        if sim.step_count == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_the_rows_so_far(tmp_path, capsys):
    out = tmp_path / "m.csv"
    out.write_text("old contents\n")
    seen_during = []
    sim = Simulation(find_scenario("default"))
    sim.observers.append(_Interrupt(25, check=lambda s: seen_during.append(out.read_text())))
    code = run_headless(sim, 1000, out, every=1, timing=False)
    assert code == 130
    # the interrupt came inside step 25: the message names the last row, step 24 (it said 25)
    assert "interrupted at step 24 (the last row)" in capsys.readouterr().err
    # while it ran the file held the old contents (until the first rows came) or whole lines of the new ones
    final = out.read_text()
    assert all(seen == "old contents\n" or (seen == final[:len(seen)] and seen.endswith("\n"))
               for seen in seen_during)
    rows = read_table(out)
    assert rows[0][:len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    assert [r[0] for r in rows[1:]] == [str(k) for k in range(1, 25)]
    assert all(len(r) == len(rows[0]) for r in rows)
    assert os.listdir(tmp_path) == ["m.csv"]                     # no temporary file left


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "m.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(out, "w", keep_on_interrupt=True) as fh:
            fh.write("half a row")
            raise RuntimeError("boom")
    assert out.read_text() == "old\n" and os.listdir(tmp_path) == ["m.csv"]


def test_new_file_gets_ordinary_permissions(tmp_path):
    out = tmp_path / "m.csv"
    with atomic_open(out, "w") as fh:
        fh.write("x\n")
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.slow
def test_sigint_to_a_real_run_keeps_whole_rows(tmp_path):
    out = tmp_path / "m.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "bsim", "run", "default", "--headless", "--steps", "100000000",
                             "--metrics", str(out), "--no-timing"], stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:        # wait until rows are being written to the file
            if out.exists() and out.stat().st_size > 50_000:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted at step" in err
    rows = read_table(out)
    assert rows[0][:len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS and len(rows) > 100
    assert all(len(r) == len(rows[0]) for r in rows)             # the last row is whole
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    assert os.listdir(tmp_path) == ["m.csv"]


class _FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_only():
    sim = Simulation(find_scenario("default"))
    tty = _FakeTTY()
    assert write_rows(sim, 500, io.StringIO(), every=100, progress=Progress(500, stream=tty)) == 500
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.getvalue())
    assert "500/500 steps" in text and "steps/s" in text and text.endswith("\n")
    pipe = io.StringIO()
    write_rows(sim, 50, io.StringIO(), progress=Progress(50, stream=pipe))
    assert pipe.getvalue() == ""
