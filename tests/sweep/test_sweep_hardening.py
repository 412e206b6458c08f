"""bsim sweep under a careless or hostile user: huge --seeds, kill -9, a duplicated row; and its layering."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT
from support.cli import read_rows
from support.sweep import SMALL

from bsim.cli import main


def sweep_args(small, out, *more):
    return ["sweep", str(small), "--batch-sizes", "1,4,16", "--target", "opt+0.05", "--lr-rule", "linear",
            "--seeds", "2", "--out", str(out), "--workers", "1", "--no-plots", *more]


def test_a_huge_seeds_is_one_line_and_exit_2(small, tmp_path, capsys):
    code = main(["sweep", str(small), "--batch-sizes", "1,2", "--target", "0.5", "--out", str(tmp_path / "o.csv"),
                 "--seeds", "100000000000"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "expected an integer in 1..1000" in err, err
    assert not (tmp_path / "o.csv").exists()


def test_a_huge_seeds_in_the_sweep_table_names_its_line(small, tmp_path, capsys):
    table = tmp_path / "table.toml"
    table.write_text(SMALL + "[sweep]\nseeds = 100000000000\n")
    code = main(["sweep", str(table), "--batch-sizes", "1,2", "--target", "0.5", "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "table.toml:15" in err and "1..1000" in err, err


def test_a_duplicated_row_is_dropped_on_resume_with_a_warning(small, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(sweep_args(small, out)) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 6
    out.write_text("\n".join(lines + [lines[3]]) + "\n")            # a row twice (a hand-merged file)
    capsys.readouterr()
    assert main(sweep_args(small, out)) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "1 duplicated row" in err
    rows = read_rows(out)
    assert len(rows) == 6 and len({(r["batch_size"], r["seed"], r["lr"]) for r in rows}) == 6


def test_show_app_asks_the_cli_to_open_the_sweep_screen(small, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.csv"
    assert main(sweep_args(small, out)) == 0
    import bsim.app.sweep_screen as screen
    opened = []
    monkeypatch.setattr(screen, "run_sweep_app", lambda path: opened.append(path) or 0)
    assert main(["sweep", "--show", str(out), "--app"]) == 0
    assert opened == [str(out)]
    code = main(["sweep", "--show", str(small), "--app"])         # not a sweep: one line, no screen
    assert code == 2 and opened == [str(out)]
    assert "not a bsim sweep CSV" in capsys.readouterr().err


@pytest.mark.slow
def test_the_sweep_imports_neither_the_app_nor_textual():
    code = ("import sys, bsim.sweep.command, bsim.sweep.engines, bsim.sweep.plots, bsim.sweep.analysis\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('bsim.app', 'textual')))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_without_workers_a_sweep_uses_the_cores_it_may_run_on(small, tmp_path, monkeypatch):
    import bsim.sweep.engines as engines
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})        # e.g. taskset -c 0, or Slurm's one core
    monkeypatch.setattr(engines, "run_pool", lambda *a, **k: pytest.fail("a pool on one allowed core"))
    args = [a for a in sweep_args(small, tmp_path / "s.csv") if a not in ("--workers", "1")]
    assert main(args) == 0
    assert engines.local_cores() == 1


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_kill_9_of_a_sweep_ends_its_pool_workers(small, tmp_path):
    # a sweep long enough to be killed mid-task: many seeds, a target it takes thousands of steps to reach
    cmd = [sys.executable, "-m", "bsim", "sweep", str(small), "--batch-sizes", "1,2,4,8", "--target", "opt+0.0005",
           "--seeds", "8", "--max-steps", "200000", "--workers", "2", "--out", str(tmp_path / "s.csv")]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        kids: list[int] = []
        while time.monotonic() < deadline and len(kids) < 3:       # two workers and the resource tracker
            time.sleep(0.5)
            kids = children_of(proc.pid)
        assert len(kids) >= 3, kids
        time.sleep(3)                                              # the workers are inside their tasks
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(k) for k in kids):
            time.sleep(0.2)
        left = [k for k in kids if alive(k)]
        for k in left:
            os.kill(k, signal.SIGKILL)
        assert not left, "pool workers outlived the sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_end_of_a_pool_ends_its_workers_without_private_fields():
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from bsim.sweep.engines import _kill
    before = set(mp.active_children())
    ex = ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn"))
    futures = [ex.submit(time.sleep, 30) for _ in range(2)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(f.running() for f in futures):
        time.sleep(0.1)
    workers = set(mp.active_children()) - before
    assert len(workers) == 2
    t0 = time.monotonic()
    _kill(ex, before)
    # the pool's own thread may reap a worker at the same moment as this one polls it, which
    # multiprocessing reports once as "alive" (its waitpid gets ECHILD): ask until the deadline
    while any(p.is_alive() for p in workers) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not any(p.is_alive() for p in workers), "pool workers outlived _kill by 5 s"


def test_the_sweep_plots_start_from_a_clean_plotext_figure():
    import plotext

    from bsim.sweep.analysis import summarize
    from bsim.sweep.plots import render
    rows = [dict(batch_size=b, seed=s, lr=0.1, reached=True, diverged=False, steps=(20 + 400 / b) * (1 + s / 50),
                 samples=(20 + 400 / b) * (1 + s / 50) * b, b_simple=3.0, b_noise=None, target_loss=0.1,
                 scenario="x", problem="linreg", on="train", target="0.1", lr_rule="none", max_steps=100)
             for b in (1, 2, 4, 8, 16, 32, 64) for s in (0, 1)]
    summary = summarize(rows)
    first = render(summary, {}, width=100, height=20)
    plotext.scatter([1, 2], [3, 4])
    plotext.title("left over by someone else")
    second = render(summary, {}, width=100, height=20)
    assert second == first and "left over" not in second
    assert "B_crit=" in first and "steps S to the target" in first
