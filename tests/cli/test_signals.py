"""Nothing lost on a signal, nothing overwritten.

SIGTERM and SIGHUP stop a headless run as Ctrl-C does (rows kept, the
recording's check written, exit 143 / 129); the metrics file is streamed in
whole lines while the run goes; a folder is synced after an atomic rename;
the app leaves the terminal as it found it; outputs never overwrite inputs
or each other. Signals, a second process and a terminal are tested on the
real ``python -m bsim`` in a subprocess; the rest calls the command in this
process (its exit code and its one line on stderr are the same).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pexpect
import pytest
from support import ROOT
from support.cli import read_table, run_cli

ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]")


def bsim(*argv, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bsim", *map(str, argv)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300, **kw)


def start(*argv, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bsim", *map(str, argv)], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(path: Path, rows: int, proc: subprocess.Popen, timeout: float = 120) -> list[list[str]]:
    """Read ``path`` while the run writes it, until it holds ``rows`` rows; returns what was read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            got = read_table(path)
            if len(got) > rows:
                return got
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {rows} rows")


def whole_lines(path: Path) -> list[list[str]]:
    """The rows of a file that must hold whole lines only: it ends with a newline, every row is full."""
    text = path.read_text()
    assert text.endswith("\n")
    rows = read_table(path)
    assert all(len(r) == len(rows[0]) for r in rows)
    return rows


# ------------------------------------------------------------------ signals to a headless run

@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_keep_the_rows_and_write_the_check(tmp_path, capsys, monkeypatch, sig, code):
    """Before: exit 143 with no metrics file, a 3 MB temporary left, and a recording with final_tick = 0."""
    proc = start("run", "default", "--headless", "--steps", "5000000", "--metrics", "t.csv", "--record", "r.toml",
                  "--no-timing", cwd=tmp_path)
    try:
        seen = wait_for_rows(tmp_path / "t.csv", 200, proc)     # rows reach the file while the run goes
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert sorted(os.listdir(tmp_path)) == ["r.toml", "t.csv"]    # no temporary file
    rows = whole_lines(tmp_path / "t.csv")
    assert rows[:len(seen)] == seen and len(rows) > 200
    last = int(rows[-1][0])
    assert [int(r[0]) for r in rows[1:]] == list(range(1, last + 1))
    assert err.strip() == f"bsim: interrupted at step {last} (the last row); the rows so far are in t.csv"
    table = tomllib.loads((tmp_path / "r.toml").read_text())["recording"]
    assert table["final_tick"] == table["final_step"] == last and "theta_sha256" in table
    if sig == signal.SIGTERM:
        # the recording replays to the very rows the interrupted run wrote, and its check passes
        monkeypatch.chdir(tmp_path)
        rep = run_cli(capsys, "replay", "r.toml", "--headless", "--metrics", "r.csv", "--no-timing")
        assert rep.code == 0 and rep.err == "", rep.err
        assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "t.csv").read_bytes()


@pytest.mark.slow
def test_every_k_a_signal_still_gives_the_row_of_the_step_reached(tmp_path):
    """The message and the rows agree: the last row is the step where the run stopped, as after the last step."""
    proc = start("run", "default", "--headless", "--steps", "5000000", "--every", "1000", "--metrics", "t.csv",
                 "--no-timing", cwd=tmp_path)
    try:
        wait_for_rows(tmp_path / "t.csv", 2, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    steps = [int(r[0]) for r in whole_lines(tmp_path / "t.csv")[1:]]
    assert steps[:-1] == [1000 * k for k in range(1, len(steps))] and steps[-1] > steps[-2]
    assert f"interrupted at step {steps[-1]} (the last row)" in err


@pytest.mark.slow
def test_kill_9_leaves_the_rows_of_the_last_second_in_whole_lines(tmp_path):
    proc = start("run", "default", "--headless", "--steps", "5000000", "--metrics", "t.csv", "--no-timing",
                 cwd=tmp_path)
    try:
        seen = wait_for_rows(tmp_path / "t.csv", 100, proc)
        time.sleep(1.5)
        size_before = (tmp_path / "t.csv").stat().st_size
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = whole_lines(tmp_path / "t.csv")
    assert rows[:len(seen)] == seen and (tmp_path / "t.csv").stat().st_size >= size_before
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))


def test_a_completed_run_streams_the_same_bytes_as_before(tmp_path, capsys, monkeypatch):
    """The streamed file of a finished run: the rows of --every 7 and the last step, nothing else."""
    monkeypatch.chdir(tmp_path)
    res = run_cli(capsys, "run", "default", "--headless", "--steps", "100", "--every", "7", "--metrics", "t.csv",
                  "--no-timing")
    assert res.code == 0 and res.err == ""
    out = run_cli(capsys, "run", "default", "--headless", "--steps", "100", "--every", "7", "--no-timing")
    assert (tmp_path / "t.csv").read_text() == out.out
    assert [int(r[0]) for r in read_table(tmp_path / "t.csv")[1:]] == list(range(7, 100, 7)) + [100]


# ------------------------------------------------------------------ the folder synced after a rename

@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name a file descriptor")
def test_a_recording_rename_is_followed_by_an_fsync_of_its_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "recs"
    folder.mkdir()
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        events.append("replace " + os.path.abspath(dst))
        return real_replace(src, dst, *a, **k)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    res = run_cli(capsys, "run", "default", "--headless", "--steps", "20", "--metrics", os.devnull,
                  "--record", folder / "r.toml")
    assert res.code == 0, res.err
    renames = [i for i, e in enumerate(events) if e == f"replace {folder / 'r.toml'}"]
    assert len(renames) >= 2                                     # at the start and with the check
    for i in renames:                                            # each rename: then the folder itself
        assert f"fsync {folder}" in events[i + 1:i + 2], events[i:i + 3]


# ------------------------------------------------------------------ outputs that would overwrite

SCENARIO = """title = "small"
description = "a small csv problem"
[problem]
kind = "linreg"
data = "train.csv"
[optimizer]
lr = 0.05
batch_size = 4
"""


@pytest.fixture
def csv_scenario(tmp_path):
    lines = ["x1,x2,y"] + [f"{i % 7},{(3 * i) % 5},{i % 7 - (3 * i) % 5 + 0.1 * (i % 3)}" for i in range(64)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "s.toml").write_text(SCENARIO)
    return tmp_path / "s.toml"


@pytest.mark.parametrize("argv, words", [
    (["run", "s.toml", "--metrics", "s.toml"], "--metrics s.toml: is the scenario being run"),
    (["run", "s.toml", "--metrics", "train.csv"], "--metrics train.csv: is the scenario's data file"),
    (["run", "s.toml", "--metrics", "out.csv", "--record", "out.csv"], "--record out.csv: is the --metrics file"),
    (["run", "s.toml", "--metrics", "out.csv", "--record", "s.toml"], "--record s.toml: is the scenario being run"),
])
def test_an_output_naming_an_input_or_another_output_is_refused(tmp_path, capsys, monkeypatch, csv_scenario, argv,
                                                               words):
    """Before: the scenario (or the data) became a CSV, or the recording silently replaced the metrics; exit 0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out.csv").write_text("kept\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    res = run_cli(capsys, *argv, "--headless", "--steps", "5")
    assert res.code == 2 and res.err.count("\n") == 1 and res.err.startswith("bsim: error: ")
    assert words in res.err, res.err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_replay_metrics_naming_the_recording_is_refused(tmp_path, capsys, monkeypatch):
    rec = record(tmp_path, capsys, monkeypatch)
    before = rec.read_bytes()
    res = run_cli(capsys, "replay", "r.toml", "--headless", "--metrics", "r.toml")
    assert res.code == 2 and "--metrics r.toml: is the scenario being run" in res.err
    assert res.err.count("\n") == 1 and rec.read_bytes() == before


@pytest.mark.slow
def test_a_second_run_on_the_same_metrics_file_refuses(tmp_path, capsys, monkeypatch):
    """Before: the second run truncated the first's file and both wrote on; now the first holds a lock."""
    first = start("run", "default", "--headless", "--steps", "5000000", "--metrics", "t.csv", "--no-timing",
                  cwd=tmp_path)
    try:
        wait_for_rows(tmp_path / "t.csv", 50, first)
        monkeypatch.chdir(tmp_path)                # the second run: in this process, on the same file
        second = run_cli(capsys, "run", "default", "--headless", "--steps", "10", "--metrics", "t.csv")
        assert second.code == 2 and second.err.count("\n") == 1, second.err
        assert "--metrics t.csv: another bsim run is writing it" in second.err
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143
    rows = whole_lines(tmp_path / "t.csv")
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))     # the first run's rows, untouched
    again = run_cli(capsys, "run", "default", "--headless", "--steps", "10", "--metrics", "t.csv")
    assert again.code == 0 and len(read_table(tmp_path / "t.csv")) == 11   # the lock went with the run


# ------------------------------------------------------------------ recordings: the end and the check

def record(tmp_path, capsys, monkeypatch) -> Path:
    """A recording of 40 steps, ``tmp_path/r.toml``; the working folder becomes ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    res = run_cli(capsys, "run", "default", "--headless", "--steps", "40", "--metrics", "-", "--record", "r.toml")
    assert res.code == 0, res.err
    return tmp_path / "r.toml"


def test_a_final_tick_past_the_stated_maximum_is_refused(tmp_path, capsys, monkeypatch):
    """Before: final_tick = 2^63 - 1 replayed headless without end."""
    rec = record(tmp_path, capsys, monkeypatch)
    text = rec.read_text()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("final_tick"))
    rec.write_text(re.sub(r"final_tick = \d+", "final_tick = 9223372036854775807", text))
    res = run_cli(capsys, "replay", "r.toml", "--headless", "--metrics", "m.csv")
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert res.err.startswith("bsim: error: ")
    assert f"r.toml:{line}: final_tick is more than 10^9 steps past the last event (step 0)" in res.err
    assert "9223372036854775807" not in res.err
    rec.write_text(re.sub(r"final_tick = \d+", "final_tick = 1000000000", text))    # the maximum itself: allowed
    res = run_cli(capsys, "replay", "r.toml", "--headless", "--steps", "3", "--metrics", "m.csv")
    assert res.code == 0


def test_an_edited_final_step_is_reported(tmp_path, capsys, monkeypatch):
    rec = record(tmp_path, capsys, monkeypatch)
    rec.write_text(rec.read_text().replace("final_step = 40", "final_step = 41"))
    res = run_cli(capsys, "replay", "r.toml", "--headless", "--metrics", "m.csv")
    assert res.code == 0
    assert res.err.strip() == ("bsim: warning: r.toml: the recording's check does not match: final_step 40 here, "
                                  "41 recorded, at step 40 (the file was edited?); going on")


def test_a_changed_data_file_is_named(tmp_path, capsys, monkeypatch, csv_scenario):
    monkeypatch.chdir(tmp_path)
    res = run_cli(capsys, "run", "s.toml", "--headless", "--steps", "30", "--metrics", "-", "--record", "r.toml")
    assert res.code == 0, res.err
    table = tomllib.loads((tmp_path / "r.toml").read_text())["recording"]
    import hashlib
    assert table["data_sha256"] == hashlib.sha256((tmp_path / "train.csv").read_bytes()).hexdigest()
    same = run_cli(capsys, "replay", "r.toml", "--headless", "--metrics", "m.csv")
    assert same.code == 0 and same.err == ""
    data = tmp_path / "train.csv"
    data.write_text(data.read_text().replace("\n0,0,", "\n0,0,9", 1))
    res = run_cli(capsys, "replay", "r.toml", "--headless", "--metrics", "m.csv")
    assert res.code == 0
    first = res.err.splitlines()[0]
    assert first.startswith("bsim: warning: r.toml: data file train.csv: changed since the recording (sha256 ")
    # a recording from before the hashes (no data_sha256) replays as it did, without that warning
    old = tmp_path / "old.toml"
    old.write_text(re.sub(r"data_sha256 = \"[0-9a-f]+\"\n", "", (tmp_path / "r.toml").read_text()))
    data.write_text(data.read_text().replace("\n0,0,9", "\n0,0,", 1))
    res = run_cli(capsys, "replay", "old.toml", "--headless", "--metrics", "m.csv")
    assert res.code == 0 and res.err == ""


# ------------------------------------------------------------------ one progress bar

def spawn(argv, cwd) -> pexpect.spawn:
    env = dict(ENV, TERM="xterm-256color")
    return pexpect.spawn(sys.executable, ["-m", "bsim", *argv], cwd=str(cwd), env=env, dimensions=(36, 120),
                         encoding="utf-8", codec_errors="replace", timeout=120)


@pytest.mark.slow
def test_one_progress_bar_for_a_run_and_a_sweep_on_a_terminal(tmp_path):
    child = spawn(["run", "default", "--headless", "--steps", "3000", "--every", "100", "--metrics", "m.csv"],
                  tmp_path)
    run_out = ANSI.sub("", child.read())
    child.close()
    assert child.exitstatus == 0
    assert "3000/3000 steps" in run_out and "steps/s" in run_out and "ETA" in run_out
    (tmp_path / "small.toml").write_text(SCENARIO.replace('data = "train.csv"', "n_train = 128\ndim = 4"))
    child = spawn(["sweep", "small.toml", "--batch-sizes", "4,16", "--target", "opt+0.05", "--out", "s.csv",
                   "--workers", "1", "--no-plots"], tmp_path)
    sweep_out = ANSI.sub("", child.read())
    child.close()
    assert child.exitstatus == 0, sweep_out
    done = re.findall(r"(\d+)/\1 tasks", sweep_out)
    assert done and "tasks/s" in sweep_out and "ETA" in sweep_out
    # the same bar: the same columns after the count
    assert re.search(r"3000/3000 steps [\d,.]+ steps/s \d+:\d\d:\d\d ETA \d+s", run_out), run_out[-300:]
    assert re.search(r"(\d+)/\1 tasks [\d,.]+ tasks/s \d+:\d\d:\d\d ETA \d+s", sweep_out), sweep_out[-300:]
    # a pipe gets no bar
    res = bsim("run", "default", "--headless", "--steps", "300", "--metrics", "m.csv", cwd=tmp_path)
    assert res.stderr == ""


# ------------------------------------------------------------------ the app

@pytest.mark.slow
def test_sigterm_to_the_app_restores_the_terminal_and_writes_the_check(tmp_path):
    """Before: the terminal stayed in the alternate screen, mouse on, cursor hidden; the recording had no check."""
    child = spawn(["run", "default", "--record", "r.toml"], tmp_path)
    try:
        text = ""
        deadline = time.monotonic() + 120
        while not re.search(r"step\s+[1-9][\d,]{2,}", ANSI.sub("", text)) and time.monotonic() < deadline:
            try:
                text += child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                pass
        assert "\x1b[?1049h" in text                               # it took the alternate screen
        child.kill(signal.SIGTERM)
        t0 = time.monotonic()
        child.expect(pexpect.EOF, timeout=20)
        took = time.monotonic() - t0
        text += child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 143, (child.exitstatus, child.signalstatus)
    assert took < 10
    tail = text[text.rindex("\x1b[?1049h"):]
    assert "\x1b[?1049l" in tail and "\x1b[?25h" in tail            # the main screen back, the cursor shown
    assert "\x1b[?1000l" in tail                                    # mouse tracking off
    table = tomllib.loads((tmp_path / "r.toml").read_text())["recording"]
    assert table["final_step"] > 0 and "theta_sha256" in table


def test_an_export_into_a_folder_another_export_is_writing_refuses(tmp_path, capsys, monkeypatch):
    """Two exports into one folder replaced each other's SVG files; an export now holds a lock on its folder."""
    import fcntl
    record(tmp_path, capsys, monkeypatch)
    frames = tmp_path / "frames"
    frames.mkdir()
    fd = os.open(frames, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)          # what a running export holds
        res = run_cli(capsys, "replay", "r.toml", "--export", "frames")     # its own open file: locked out
    finally:
        os.close(fd)
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert "--export frames: another bsim export is writing into it" in res.err
    assert os.listdir(frames) == []
    res = run_cli(capsys, "replay", "r.toml", "--export", "frames")     # the lock released: it writes
    assert res.code == 0 and os.listdir(frames), res.err
