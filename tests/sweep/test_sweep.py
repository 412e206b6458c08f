"""bsim sweep: real sweeps on small problems, exact S, engines, resume, divergence, the command line."""

import dataclasses
import re

import pytest
import torch
from support.cli import read_rows, run_cli
from support.sweep import SMALL, TINY_LSTM, spec_of, without_wall

from bsim.cli import main
from bsim.progress import Progress
from bsim.scenario import load_scenario
from bsim.simulation import Simulation
from bsim.sweep import load_sweep, state
from bsim.sweep.engines import run_sweep
from bsim.sweep.plots import place_labels, render
from bsim.sweep.spec import SweepSpec, Task
from bsim.sweep.task import batched_loss, run_task

QUIET = Progress(1, enabled=False)


def test_a_small_sweep_takes_fewer_steps_at_larger_batch_sizes(small, tmp_path):
    out = run_sweep(spec_of(small), tmp_path / "s.csv", workers=1, progress=QUIET, quiet=True)
    rows = out.rows
    assert len(rows) == 8 and all(r["reached"] for r in rows)
    for seed in (0, 1):
        steps = [r["steps"] for r in sorted(rows, key=state.row_key) if r["seed"] == seed]
        assert steps == sorted(steps, reverse=True) and len(set(steps)) == 4, steps   # S strictly falls with B
        # E = examples seen in those S steps: B S, less at most one short batch per epoch (N = 256)
        for r in rows:
            assert r["samples"] <= r["batch_size"] * r["steps"]
            assert r["samples"] > r["batch_size"] * (r["steps"] - 1 - r["samples"] // 256)


def test_linear_problems_report_the_exact_first_step_at_the_target(small):
    spec = spec_of(small, seeds=(0,))
    for b in (1, 16):
        res = run_task(spec, Task(b, 0, spec.lrs_for(b)[0]))
        S = res.row["steps"]
        # replay the same task step by step: the train loss is above the target before S and at or below at S
        sim = Simulation(spec.task_scenario(Task(b, 0, spec.lrs_for(b)[0])), stats=False)
        p = sim.problem
        target = float(p.train_loss(p.theta_star)) + 0.05
        assert res.row["target_loss"] == pytest.approx(target, rel=1e-12)
        losses = []
        for _ in range(S):
            sim.step()
            losses.append(float(p.train_loss(sim.theta)))
        assert min(losses[:-1]) > target >= losses[-1]
        assert res.row["train_loss"] == pytest.approx(losses[-1], rel=1e-12)
        assert res.row["samples"] == sim.sampler.samples


@pytest.mark.slow
def test_lstm_s_is_a_crossing_found_by_bisection(tmp_path):
    p = tmp_path / "lstm.toml"
    p.write_text(TINY_LSTM)
    sc = load_scenario(p)
    init = float(Simulation(sc, stats=False).problem.train_loss(Simulation(sc, stats=False).theta))
    spec = SweepSpec(scenario=sc, scenario_name="tiny", batch_sizes=(1,), target=0.6 * init, max_steps=3000)
    task = Task(1, 0, 0.5)
    res = run_task(spec, task)
    assert res.row["reached"] and res.row["check_every"] == 16     # a quarter epoch: ceil(64 / 1) / 4
    S = res.row["steps"]
    sim = Simulation(spec.task_scenario(task), stats=False)
    sim.run(S - 1)
    before = float(sim.problem.train_loss(sim.theta))
    sim.step()
    at = float(sim.problem.train_loss(sim.theta))
    assert before > spec.target >= at


@pytest.mark.slow
def test_the_local_pool_and_an_in_process_run_give_identical_rows(small, tmp_path):
    spec = spec_of(small, batch_sizes=(2, 8, 32), seeds=(0, 1))
    a = run_sweep(spec, tmp_path / "a.csv", workers=1, progress=QUIET, quiet=True).rows
    b = run_sweep(spec, tmp_path / "b.csv", workers=2, progress=QUIET, quiet=True).rows
    assert without_wall(a) == without_wall(b)
    text_a = (tmp_path / "a.curves" / "B8-seed1-lr0.1.csv").read_text()
    assert text_a == (tmp_path / "b.curves" / "B8-seed1-lr0.1.csv").read_text()


def test_a_killed_sweep_resumes_without_redoing_finished_tasks(small, tmp_path):
    spec = spec_of(small)
    full = run_sweep(spec, tmp_path / "full.csv", workers=1, batched=False, progress=QUIET, quiet=True).rows
    # a sweep killed after three tasks (one at a time, as a task_fn runs them): its CSV holds three rows
    part = tmp_path / "part.csv"
    done = sorted(full, key=state.row_key)[:3]
    state.write_rows(part, done)
    ran = []

    def counting(spec, task):
        ran.append(task.key)
        return run_task(spec, task)

    out = run_sweep(spec, part, workers=1, task_fn=counting, progress=QUIET, quiet=True)
    assert out.skipped == 3 and out.ran == 5
    assert set(ran) == {t.key for t in spec.tasks()} - {state.row_key(r) for r in done}
    assert without_wall(state.read_rows(part)) == without_wall(full)
    again = run_sweep(spec, part, workers=1, task_fn=counting, progress=QUIET, quiet=True)
    assert again.ran == 0 and len(ran) == 5


def test_resuming_a_csv_of_another_sweep_is_refused(small, tmp_path):
    out = tmp_path / "s.csv"
    run_sweep(spec_of(small, batch_sizes=(4,), seeds=(0,)), out, workers=1, progress=QUIET, quiet=True)
    with pytest.raises(Exception, match="holds a sweep with target = opt\\+0.05, not opt\\+0.1"):
        run_sweep(spec_of(small, batch_sizes=(4,), seeds=(0,), target=0.1), out, workers=1, progress=QUIET, quiet=True)


def test_a_diverged_task_is_a_row_and_stays_out_of_the_fit(small, tmp_path):
    spec = spec_of(small, batch_sizes=(1, 4, 16, 64), seeds=(0,), lr_rule="tuned", lr_grid=(0.05, 0.2, 50.0))
    out = run_sweep(spec, tmp_path / "s.csv", workers=1, progress=QUIET, quiet=True)
    big = [r for r in out.rows if r["lr"] == 50.0]
    assert len(big) == 4
    for r in big:
        assert r["diverged"] and not r["reached"] and r["stop"] == "diverged" and r["steps"] is None
        assert r["steps_run"] < 200          # lr 50 >> 2 / lambda_max: it blows up within a few dozen steps
    summary, _ = load_sweep(tmp_path / "s.csv")
    assert all(pb.lr != 50.0 for pb in summary.per_b)


def test_an_lr_whose_noise_floor_is_above_the_target_stops_on_a_plateau(small):
    # B = 1 at lr 1.2: SGD noise keeps the loss far above L* + 0.002, so it stops at a doubling, not max_steps
    spec = spec_of(small, seeds=(0,), target=0.002, max_steps=20000)
    r = run_task(spec, Task(1, 0, 1.2)).row
    assert r["stop"] == "plateau" and not r["reached"] and r["steps_run"] in (1024, 2048, 4096, 8192)


def test_loss_of_many_parameter_vectors_at_once_matches_one_at_a_time(small):
    p = Simulation(load_scenario(small), stats=False).problem
    thetas = [torch.randn(4, dtype=torch.float64) for _ in range(5)]
    many = batched_loss(p, thetas, "test")
    assert many.tolist() == pytest.approx([float(p.test_loss(t)) for t in thetas], rel=1e-12)


@pytest.mark.slow
def test_bsim_sweep_runs_saves_and_shows(small, tmp_path, capsys):
    out = tmp_path / "sw.csv"
    args = ["sweep", str(small), "--batch-sizes", "1,2,4,...,64", "--target", "opt+0.05", "--lr-rule", "linear",
            "--seeds", "2", "--out", str(out), "--workers", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "B_crit" in printed and "steps S to the target" in printed and "train loss" in printed
    rows = read_rows(out)
    assert len(rows) == 14 and set(rows[0]) == set(state.COLUMNS)
    assert len(list((tmp_path / "sw.curves").glob("*.csv"))) == 14
    assert main(args) == 0                  # everything is done: the rerun only shows it
    assert "14 of 14 tasks already done" in capsys.readouterr().err
    assert main(["sweep", "--show", str(out), "--no-plots"]) == 0
    shown = capsys.readouterr().out
    # the linear rule keeps E = B S constant from B = 1 to 64 here: no knee, and the report says so
    assert "no fit: cannot fit: the steps fall as 1/B all the way" in shown and "B_simple" in shown


@pytest.mark.slow
def test_the_plots_mark_the_regimes_and_draw_one_curve_per_batch_size(small, tmp_path):
    spec = spec_of(small, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128), seeds=(0,), lr_rule="tuned",
                   lr_grid=(0.0125, 0.05, 0.2, 0.8), target=0.01)
    run_sweep(spec, tmp_path / "s.csv", workers=2, progress=QUIET, quiet=True)
    summary, curves = load_sweep(tmp_path / "s.csv")
    text = render(summary, curves, width=120, height=20)
    if summary.fit.ok:
        assert f"B_crit={summary.fit.b_crit:.3g}" in text
    else:
        assert "no fit: cannot fit" in text
    assert "a B=1" in text and "f B=128" in text          # six curves, lettered, first and last batch sizes
    assert "\x1b[" not in text
    if summary.fit.ok:
        # three marks on the same spot: the labels are staggered on two rows, or dropped; never run together
        b = summary.fit.b_crit
        crowded = dataclasses.replace(summary, b_noise=b * 1.05, b_simple=b * 0.95)
        text = render(crowded, curves, width=120, height=20)
        label = re.compile(r"(B_crit|B_noise|B_simple)=[0-9.e+]+|perfect scaling|max parallel")
        lines = text.splitlines()
        top = next(i for i, line in enumerate(lines) if f"B_crit={b:.3g}" in line)
        assert lines[top].count(f"B_crit={b:.3g}") == 2          # whole, on both trade-off charts (side by side)
        assert label.search(lines[top + 1])                      # a crowded label staggered one row below
        assert "B_simple=" not in text                           # three labels on one spot, two rows: one goes
        for line in text.splitlines():
            spans = [m.span() for m in label.finditer(line)]
            assert all(end < start for (_, end), (start, _) in zip(spans, spans[1:])), line


def test_labels_that_would_overlap_are_staggered_then_dropped():
    marks = [("B_crit=7.29", 7.29, "center"), ("perfect scaling", 1, "left"), ("B_noise=8", 8.0, "center"),
             ("max parallel", 128, "right"), ("B_simple=7", 7.0, "center")]
    placed = {label: row for label, _, _, row in place_labels(marks, 1, 128, columns=50)}
    # on 50 columns B_crit (log2 7.29 / 7 of 49: column 20, centred) takes columns 14-25 of the top row;
    # 'perfect scaling' (0-14) would touch it: one row down; B_noise=8 (16-25) fits there a blank after it;
    # B_simple=7 (15-24) fits on neither row and is dropped
    assert placed == {"B_crit=7.29": 0, "perfect scaling": 1, "B_noise=8": 1, "max parallel": 0}
    far = place_labels([("a=1", 1, "left"), ("b=128", 128, "right")], 1, 128, columns=50)
    assert [row for *_, row in far] == [0, 0]
    wide = place_labels([("B_noise=120", 120, "center")], 1, 128, columns=50)
    assert wide[0][2] == "right"                      # a centred label at the frame ends at its x instead


@pytest.mark.parametrize("args, message", [
    ([], "missing SCENARIO"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5"], "--out: missing"),
    (["{small}", "--target", "0.5", "--out", "{out}"], "--batch-sizes: missing"),
    (["{small}", "--batch-sizes", "1,2", "--out", "{out}"], "--target: missing"),
    (["{small}", "--batch-sizes", "2,3,...,9", "--target", "0.5", "--out", "{out}"], "starts no progression"),
    (["{small}", "--batch-sizes", "1,512", "--target", "0.5", "--out", "{out}"], "512 is above N = 256"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.01", "--out", "{out}"], "no batch size can reach it"),
    (["{small}", "--batch-sizes", "1,2", "--target", "100", "--out", "{out}"], "already"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5", "--lr-grid", "0.1", "--out", "{out}"], "only tuned"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5", "--out", "{out}", "--workers", "2", "--ray"], "not both"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5", "--out", "{out}", "--ray", "nohost"], "Ray address"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5", "--out", "{out}", "--seeds", "0"], "expected an integer"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5", "--out", "{out}", "--lr-rule", "cubic"], "invalid choice"),
    (["{small}", "--batch-sizes", "1,2", "--target", "0.5", "--out", "/no/such/dir/s.csv"], "no such folder"),
    (["{small}", "--show", "{out}"], "not both"),
    (["--show", "{missing}"], "no such file"),
    (["--show", "{small}"], "not a bsim sweep CSV"),
    (["{lstm}", "--batch-sizes", "1,2", "--target", "opt+0.1", "--out", "{out}"], "no known optimum"),
    (["{nots}", "--batch-sizes", "1,2", "--target", "0.5", "--on", "test", "--out", "{out}"], "no test set"),
    (["{table}", "--out", "{out}"], "table.toml:15: sweep.lr_rule: got 'cubic', expected one of none, linear"),
])
def test_bad_sweep_input_is_one_line_and_exit_2(small, tmp_path, capsys, args, message):
    lstm = tmp_path / "lstm.toml"
    lstm.write_text(TINY_LSTM)
    nots = tmp_path / "nots.toml"
    nots.write_text(SMALL.replace("n_test = 64", "n_test = 0"))
    table = tmp_path / "table.toml"    # a bad [sweep] table: its file, line and key, before any flag is used
    table.write_text(SMALL + '[sweep]\nlr_rule = "cubic"\n')
    fill = dict(small=small, out=tmp_path / "o.csv", missing=tmp_path / "missing.csv", lstm=lstm, nots=nots,
                table=table)
    code, _, err = run_cli(capsys, "sweep", *[a.format(**fill) for a in args])
    err = err.strip()
    assert code == 2, err
    assert err.startswith("bsim: error:") and "\n" not in err and "Traceback" not in err
    assert message in err, err
    assert not (tmp_path / "o.csv").exists()


def crash_once(folder, spec, task):
    """Kill this pool worker the first time the B = 16 task runs (a lost process), then run tasks normally."""
    import os
    marker = os.path.join(folder, f"{task.name}.crashed")
    if task.batch_size == 16 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return run_task(spec, task)


@pytest.mark.slow
def test_a_pool_whose_worker_dies_is_rebuilt_and_finishes_the_sweep(small, tmp_path, capsys):
    import functools
    spec = spec_of(small, batch_sizes=(4, 16, 64), seeds=(0,))
    rows = run_sweep(spec, tmp_path / "pool.csv", workers=2, task_fn=functools.partial(crash_once, str(tmp_path)),
                     progress=QUIET, quiet=True).rows
    assert (tmp_path / "B16-seed0-lr0.2.crashed").exists()          # the worker did die once
    assert "a pool worker died; retrying" in capsys.readouterr().err
    here = run_sweep(spec, tmp_path / "here.csv", workers=1, batched=False, progress=QUIET, quiet=True).rows
    assert without_wall(rows) == without_wall(here)


def always_crash(spec, task):
    import os
    os._exit(1)


@pytest.mark.slow
def test_a_task_that_always_kills_its_worker_ends_the_sweep_in_one_line(small, tmp_path, monkeypatch, capsys):
    import bsim.sweep.engines as engines
    monkeypatch.setattr(engines, "MAX_RETRIES", 1)          # one rebuild of the pool, then give up
    real = engines.run_sweep
    monkeypatch.setattr(engines, "run_sweep", lambda *a, **k: real(*a, **{**k, "task_fn": always_crash}))
    rc = main(["sweep", str(small), "--batch-sizes", "4,16", "--target", "opt+0.05", "--out", str(tmp_path / "s.csv"),
               "--workers", "2", "--no-plots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1].startswith("bsim: the sweep stopped after 0 of 2 tasks: BrokenProcessPool")
    assert "Traceback" not in "\n".join(err)


def test_progress_shows_tasks_done_and_an_eta():
    import io
    import re

    def plain(text):
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)

    clock = [100.0]
    stream = io.StringIO()
    p = Progress(40, done=10, unit="tasks", stream=stream, enabled=True, clock=lambda: clock[0])
    p.update(10, force=True)
    first = plain(stream.getvalue())
    assert "10/40 tasks" in first and "ETA ?" in first                  # nothing run yet: no rate, no ETA
    clock[0] += 10.0                                                     # 10 s later; 5 tasks done since
    p.update(15, "B=4 S=120", force=True)
    p.close()
    line = plain(stream.getvalue()).split("\r")[-1]
    assert "15/40 tasks" in line and "B=4 S=120" in line and "0.5 tasks/s" in line
    assert "ETA 50s" in line                                             # 2 s a task, 25 left


@pytest.mark.slow
def test_the_bundled_least_squares_sweep_finds_the_same_b_crit_on_other_seeds(tmp_path, capsys):
    """Done-when of the issue: reruns (seeds 0-2 and 3-5, both fixed) agree within the stated bootstrap spread."""
    fits = []
    for seed in (0, 3):
        out = tmp_path / f"s{seed}.csv"
        assert main(["sweep", "sweep-linreg", "--seed", str(seed), "--out", str(out), "--workers", "2",
                     "--no-plots"]) == 0
        summary, _ = load_sweep(out)
        assert summary.fit.ok and summary.spread is not None
        steps = [pb.mean_steps for pb in summary.per_b]
        assert steps == sorted(steps, reverse=True)                    # S falls with B at the tuned lr
        fits.append((summary.fit.b_crit, summary.spread))
    (b0, sp0), (b3, sp3) = fits
    assert sp0.lo <= b3 <= sp0.hi and sp3.lo <= b0 <= sp3.hi
    capsys.readouterr()
