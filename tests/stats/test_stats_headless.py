"""The statistics in running simulations: headless CSV columns, the measured ball, windows, probes."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from support.cli import read_table

from bsim.cli import main
from bsim.frame import CSV_COLUMNS
from bsim.headless import write_rows
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation
from bsim.stats.cfactor import c_factor
from bsim.stats.sampled import LSTM_FULL_GRAD_EVERY

CONTRACT = ["grad_noise", "grad_noise_theory", "noise_scale", "ball_radius_theory"]


def headless_rows(capsys, tmp_path, *argv):
    """``bsim run ARGV --headless``: its CSV's header and its rows as dicts."""
    out = tmp_path / "m.csv"
    assert main(["run", *argv, "--headless", "--no-timing", "--metrics", str(out)]) == 0
    capsys.readouterr()
    rows = read_table(out)
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.mark.slow
def test_csv_grad_noise_averages_to_its_theory(capsys, tmp_path):
    """Every row: grad_noise - grad_noise_theory has mean 0 given the row's parameters (a martingale
    difference), so its standard error is the plain one."""
    header, rows = headless_rows(capsys, tmp_path, "default", "--sampling", "iid", "--steps", "4000")
    assert header[:17] == list(CSV_COLUMNS[:17])
    assert header[17:] == ["ball_radius", "trace_sigma", "temperature", "full_grad_every", "ball_theory",
                           "train_acc", "test_acc", "batch_test", "basin_0_frac", "basin_1_frac", "escaped",
                           "escape_rate", "escape_rate_se", "escape_rate_theory", "escape_theory"]
    assert all(rows[-1][c] == "" for c in header[24:])     # no adaptive batch size, not a landscape
    assert rows[-1]["train_acc"] == rows[-1]["test_acc"] == ""     # least squares is not a classifier
    d = np.array([float(r["grad_noise"]) - float(r["grad_noise_theory"]) for r in rows])
    theory = np.mean([float(r["grad_noise_theory"]) for r in rows])
    assert abs(d.mean()) < 4 * d.std(ddof=1) / math.sqrt(len(d))
    assert d.std(ddof=1) / math.sqrt(len(d)) < 0.05 * theory
    r = rows[-1]
    assert float(r["temperature"]) == pytest.approx(0.05 * (1024 / 8 - 1))     # lr (N/B - 1), Smith & Le
    assert r["ball_theory"] == "exact"
    assert r["full_grad_every"] == "1"
    assert float(r["grad_noise_theory"]) == pytest.approx(c_factor(1024, 8, "iid") * float(r["trace_sigma"]))
    assert float(r["noise_scale"]) == pytest.approx(float(r["trace_sigma"]) / float(r["full_grad_norm"]) ** 2)


@pytest.mark.slow
def test_measured_ball_in_a_long_run_matches_the_prediction():
    sc = apply_overrides(find_scenario("default"), sampling="iid", lr=0.2)
    sim = Simulation(sc)
    buf = io.StringIO()
    write_rows(sim, 60000, buf, every=100, timing=False)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows[0]["ball_radius"] == ""                          # still burning in at step 100
    last = rows[-1]
    ball = sim.frame(timing=False).ball
    assert ball.burn_in == pytest.approx(8 / (0.2 * 0.2497), rel=0.05)   # 8 relaxation times 1/(lr lambda_min)
    assert ball.window_steps == 60000 - ball.burn_in
    measured, theory = float(last["ball_radius"]), float(last["ball_radius_theory"])
    assert measured == ball.radius_measured and theory == ball.radius_theory
    assert ball.radius_se < 0.02 * theory
    assert abs(measured - theory) < 4 * ball.radius_se and abs(measured / theory - 1) < 0.05
    # the RMS of dist_to_opt over the rows after burn-in is the same measurement, sparser
    late = np.array([float(r["dist_to_opt"]) for r in rows if int(r["step"]) > 2 * ball.burn_in])
    assert abs(math.sqrt((late ** 2).mean()) / theory - 1) < 0.15


def test_window_restarts_when_the_batch_size_changes():
    sim = Simulation(apply_overrides(find_scenario("default"), sampling="iid", lr=0.2))
    sim.run(3000)
    before = sim.frame().ball
    assert before.radius_measured is not None
    sim.set_batch_size(32)
    f = sim.frame().ball
    assert f.radius_measured is None and f.window_steps == 0 and f.burn_in_left == f.burn_in
    assert f.radius_theory < 0.6 * before.radius_theory       # a 4x bigger batch: about half the radius
    sim.run(f.burn_in - 1)                                      # one step of the burn-in still to go
    mid = sim.frame().ball
    assert mid.window_steps == 0 and mid.burn_in_left == 1 and mid.radius_measured is None
    sim.run(2000)
    after = sim.frame().ball
    assert after.window_steps == 1999 and after.burn_in_left == 0
    pts = {p.batch_size: p for p in sim.frame().stats.variance_measured}
    assert set(pts) == {8, 32} and pts[8].steps == 3000
    for p in pts.values():
        assert abs(p.grad_noise_mean - p.theory_mean) < 4 * p.grad_noise_se


def test_probe_leaves_the_trajectory_alone_and_matches_the_prediction():
    sc = apply_overrides(find_scenario("default"), sampling="shuffle")
    a, b = Simulation(sc), Simulation(sc)
    for _ in range(5):
        a.run(100)
        b.run(100)
        res = a.noise_stats.probe(batches=8)
        assert res.step == a.step_count and len(res.batch_grads) == 8
    assert a.theta.tolist() == b.theta.tolist()
    assert a.frame(timing=False).csv_row() == b.frame(timing=False).csv_row()
    res = a.noise_stats.probe(batches=600)
    assert abs(res.grad_noise_mean - res.predicted) < 4 * res.grad_noise_se
    assert a.frame().probe is res
    again = a.noise_stats.probe(batches=600)
    assert again.grad_noise_mean != res.grad_noise_mean          # fresh batches every time


def test_lstm_columns_and_labels(capsys, tmp_path):
    _, rows = headless_rows(capsys, tmp_path, "lstm", "--steps", "120", "--every", "60")
    for r in rows:
        for col in ("grad_noise", "grad_noise_theory", "noise_scale", "trace_sigma", "temperature"):
            assert r[col] != "", col
        assert r["ball_radius_theory"] == "" and r["full_grad_every"] == str(LSTM_FULL_GRAD_EVERY)
    sim = Simulation(find_scenario("lstm"))
    sim.run(700)
    f = sim.frame()
    assert f.ball.label.startswith("spread around the running average")
    assert f.ball.radius_measured > 0 and f.ball_radius == f.ball.radius_measured
    assert f.stats.trace_sigma_label.startswith("two-batch estimate")
    assert f.stats.variance_measured[0].steps == 700 // LSTM_FULL_GRAD_EVERY
    assert f.grad_noise_theory == pytest.approx(c_factor(1024, 32, "shuffle") * f.trace_sigma)


def test_off_for_benchmarks_and_problem_switch_and_reset():
    off = Simulation(find_scenario("default"), stats=False)
    off.run(10)
    f = off.frame()
    assert f.grad_noise is None and f.ball is None and f.full_grad_norm > 0
    sim = Simulation(apply_overrides(find_scenario("default"), sampling="iid"))
    sim.run(50)
    sim.switch_problem("logreg")
    f = sim.frame()
    assert f.grad_noise is None and f.ball.label.startswith("linearisation at theta*")
    sim.run(20)
    assert sim.frame().stats.variance_measured[0].steps == 20
    sim.reset()
    assert sim.frame().grad_noise is None
    sim.run(5)
    assert sim.frame().stats.variance_measured[0].steps == 5


def test_unstable_lr_says_so_and_divergence_does_not_crash():
    sim = Simulation(apply_overrides(find_scenario("default"), lr=2.0, sampling="iid"))
    f = sim.frame()
    ball = f.ball
    assert f.ball_radius_theory is None and not ball.stable
    assert ball.note.startswith(f"unstable: lr above the limit {ball.lr_limit:.4g}") and ball.lr_limit < 2.0
    sim = Simulation(apply_overrides(find_scenario("default"), lr=3.0))   # above 2 / lambda_max as well
    sim.run(5000)
    assert sim.diverged
    f = sim.frame()
    assert f.status == "diverged" and not f.ball.stable


@pytest.mark.slow
def test_big_data_enters_every_K_steps_and_frames_stay_exact():
    """logreg with N d = 163840: an O(N d) pass per step would dominate, so every 3rd step enters the
    averages (stated as full_grad_every); a frame's own step is computed exactly all the same."""
    sc = apply_overrides(find_scenario("logreg"), batch_size=16)
    sc.problem.n_train, sc.problem.dim = 8192, 20
    sim = Simulation(sc)
    sim.run(301)                                   # the last step, 301, is not a multiple of 3
    f = sim.frame()
    assert f.full_grad_every == 3 and f.stats.variance_measured[0].steps == 100
    P = sim.problem.per_example_grads(sim.last_theta)
    G = P.mean(0)
    assert f.grad_noise == pytest.approx(float(((sim.last_grad - G) ** 2).sum()), rel=1e-9)
    assert f.trace_sigma == pytest.approx(float(((P - G) ** 2).sum(1).mean()), rel=1e-9)


def test_the_variance_theory_line_comes_with_the_frame():
    """frame.stats.variance_line: (B, (N-B)/(B(N-1)) tr(Sigma)) from B = 1 to N, what the variance panel draws."""
    sim = Simulation(find_scenario("default"))
    assert sim.frame().stats.variance_line == ()                  # no step yet: no tr(Sigma)
    sim.run(3)
    f = sim.frame()
    line = f.stats.variance_line
    bs = [b for b, _ in line]
    assert bs[0] == 1 and bs[-1] == 1024 and bs == sorted(set(bs)) and len(bs) > 50
    for b, v in line:
        assert v == pytest.approx((1024 - b) / (b * 1023) * f.trace_sigma, rel=1e-12)


def test_the_temperature_is_zero_with_the_whole_training_set_and_grows_with_momentum():
    """lr (N/B - 1)/(1 - m): no noise at B = N; momentum m multiplies it by 1/(1 - m)."""
    sc = find_scenario("default")
    sc.problem.n_train, sc.problem.n_test = 64, 16
    sim = Simulation(apply_overrides(sc, batch_size=64))
    sim.run(2)
    assert sim.frame().temperature == 0.0 and sim.frame().grad_noise == pytest.approx(0.0, abs=1e-20)
    sim = Simulation(apply_overrides(sc, batch_size=16, momentum=0.5))
    sim.run(2)
    assert sim.frame().temperature == pytest.approx(0.05 * (64 / 16 - 1) / 0.5)
