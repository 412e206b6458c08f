"""A sweep on least squares that interpolates (d >= N): each row carries m* = max|x_i|^2 / lambda_max(H) of its
data (Ma, Bassily & Belkin 2018), the report names it and the trade-off plots mark it (issue 23, item 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.sweep import spec_of

from bsim.problems import make_problem
from bsim.progress import Progress
from bsim.scenario import find_scenario, load_scenario
from bsim.sweep import load_sweep
from bsim.sweep.engines import run_sweep
from bsim.sweep.plots import render

QUIET = Progress(1, enabled=False)


@pytest.mark.slow       # a sweep: ~5 s
def test_a_sweep_of_an_interpolating_problem_marks_m_star(tmp_path):
    path = tmp_path / "interp.toml"
    path.write_text(find_scenario("interpolation").path.read_text().replace("n_train = 24", "n_train = 16")
                    .replace("dim = 48", "dim = 32"))
    spec = spec_of(path, scenario_name="interp", batch_sizes=(1, 2, 4, 8, 16), seeds=(0, 1), lr_rule="linear",
                   target=1e-3, max_steps=3000)
    run_sweep(spec, tmp_path / "s.csv", workers=1, progress=QUIET, quiet=True)
    summary, curves = load_sweep(tmp_path / "s.csv")
    expected = []
    for seed in (0, 1):                          # each seed its own synthetic data, m* from NumPy
        sc = load_scenario(path)
        sc.seed = seed
        X = make_problem(sc, torch.device("cpu"), torch.float64).X64
        expected.append(max(float(x @ x) for x in X) / np.linalg.eigvalsh(X @ X.T / len(X))[-1])
    for r in summary.rows:
        assert r["m_star"] == pytest.approx(expected[r["seed"]], rel=1e-10)
    assert summary.m_star == pytest.approx(float(np.median(expected)), rel=1e-10)
    text = render(summary, curves, width=120, height=24)
    assert f"m* = max|x_i|^2/lambda_max(H) = {summary.m_star:.3g}" in text
    assert f"m*={summary.m_star:.3g}" in text                     # the mark on the trade-off plots
