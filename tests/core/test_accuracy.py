"""Logistic regression's train_acc and test_acc: the fraction classified right, checked by hand in NumPy."""

from __future__ import annotations

import numpy as np

from bsim.cli import main
from bsim.scenario import load_scenario
from bsim.simulation import Simulation
from support import ROOT
from support.cli import read_rows


def test_logreg_frames_carry_the_fraction_classified_right():
    sim = Simulation(load_scenario(ROOT / "scenarios" / "logreg.toml"), device="cpu")
    sim.run(300)
    frame = sim.frame(timing=False)
    p = sim.problem
    theta = sim.theta.double().numpy()
    for X, y, got in ((p.X, p.y, frame.train_acc), (p.X_test, p.y_test, frame.test_acc)):
        X, y = X.double().numpy(), y.double().numpy()
        predicted = (X @ theta > 0).astype(float)
        assert got == np.mean(predicted == y)
    assert 0.6 < frame.train_acc < 1.0          # better than chance on overlapping classes, never perfect


def test_logreg_csv_has_accuracy_and_least_squares_leaves_it_empty(tmp_path, capsys):
    for name, filled in (("logreg", True), ("default", False)):
        out = tmp_path / f"{name}.csv"
        assert main(["run", name, "--headless", "--no-timing", "--steps", "20", "--metrics", str(out)]) == 0
        rows = read_rows(out)
        cells = [(r["train_acc"], r["test_acc"]) for r in rows]
        if filled:
            assert all(0 <= float(a) <= 1 and 0 <= float(b) <= 1 for a, b in cells)
        else:
            assert all(a == b == "" for a, b in cells)
    capsys.readouterr()
