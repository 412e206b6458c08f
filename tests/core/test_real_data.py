"""The bundled real data sets: the files, their split and standardizing, the accuracies the README shows,
bad data in one line with exit 2, and a run from the installed package alone."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from support import ROOT
from support.cli import run_cli

from bsim.problems import make_problem
from bsim.scenario import find_scenario
from bsim.simulation import Simulation

DATA = ROOT / "scenarios" / "data"
CPU = torch.device("cpu")
#: name -> (file, rows, feature columns, SHA-256 of the file as bundled)
BUNDLED = {
    "diabetes": ("diabetes.csv", 442, 10, "404632545e101c5a62ed5b7e741ec07734728273dfb993e5a456cd8bc659dd25"),
    "breast-cancer": ("breast-cancer.csv", 569, 30, "b6fc74e5a18e050b2c5fbc3a1522cc247fbbaa4664e58a2e174abc465364053a"),
    "digits": ("digits.csv", 1797, 64, "ac3074b6987a34b06c98db8aa4f69fc8b4c1efed80005072765793e72546d629"),
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_each_data_file_is_the_bundled_one(name):
    fname, rows, cols, sha = BUNDLED[name]
    raw = (DATA / fname).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == sha
    table = list(csv.reader(raw.decode("ascii").splitlines()))
    assert table[0][-1] == "y" and len(table[0]) == cols + 1 and len(table) == rows + 1
    assert fname in (DATA / "DATA.md").read_text()                 # provenance and licence written down
    sc = find_scenario(name)
    assert sc.problem.data == f"data/{fname}" and sc.problem.test_fraction > 0 and sc.problem.standardize


def test_bsim_scenarios_lists_the_real_data_sets(capsys):
    ran = run_cli(capsys, "scenarios")
    assert ran.code == 0
    lines = {line.split()[0]: line for line in ran.out.splitlines()}
    for name in BUNDLED:
        assert "Real data" in lines[name]


def test_split_and_standardizing_follow_the_scenario():
    """diabetes: 25% of the rows held out, the test rows the first of the rows ordered by sha256("0:i");
    the features standardized with the training rows' mean and std (1/N); a column of ones last."""
    table = np.loadtxt(DATA / "diabetes.csv", delimiter=",", skiprows=1)
    order = sorted(range(len(table)), key=lambda i: hashlib.sha256(f"0:{i}".encode()).hexdigest())
    test = sorted(order[:round(0.25 * len(table))])
    train = [i for i in range(len(table)) if i not in set(test)]
    Xtr, Xte = table[train, :-1], table[test, :-1]
    mean, std = Xtr.mean(0), Xtr.std(0)
    p = make_problem(find_scenario("diabetes"), CPU, torch.float64)
    assert p.n_train == 332 and p.X_test.shape == (110, 11)
    assert np.allclose(p.X64[:, :-1], (Xtr - mean) / std, rtol=0, atol=1e-12)
    assert np.allclose(p.X_test.numpy()[:, :-1], (Xte - mean) / std, rtol=0, atol=1e-12)
    assert (p.X64[:, -1] == 1).all() and np.array_equal(p.y64, table[train, -1])
    assert np.allclose(p.X64.T @ (p.X64 @ p.theta_star64 - p.y64), 0, atol=1e-8)   # the normal equations


def accuracy_after(name, epochs):
    sc = find_scenario(name)
    sim = Simulation(sc, stats=False)
    steps = epochs * -(-sim.problem.n_train // sc.optimizer.batch_size)
    for _ in range(steps):
        sim.step()
    p = sim.problem
    return float(p.train_accuracy(sim.theta)), float(p.test_accuracy(sim.theta)), sim.sampler.epoch


def test_breast_cancer_test_accuracy_after_20_epochs():
    train, test, epochs = accuracy_after("breast-cancer", 20)
    assert epochs == pytest.approx(20.0) and test >= 0.95 and train >= 0.95


@pytest.mark.slow
def test_digits_test_accuracy_after_20_epochs():
    train, test, epochs = accuracy_after("digits", 20)
    assert epochs == pytest.approx(20.0) and test >= 0.93 and train > test


def write_digits(tmp_path, rows, classes=10, **extra):
    """A softmax scenario on a small CSV of ``rows`` (lists: 2 features then y)."""
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    more = "".join(f"{k} = {v}\n" for k, v in extra.items())
    (tmp_path / "s.toml").write_text(f'[problem]\nkind = "softmax"\ndata = "d.csv"\nclasses = {classes}\n'
                                     f"l2 = 0.01\n{more}")
    return tmp_path / "s.toml"


def test_a_label_out_of_range_is_one_line_and_exit_2(tmp_path, capsys):
    rows = [[0.1 * i, 1.0 - 0.1 * i, i % 3] for i in range(9)] + [[0.5, 0.5, 3]]
    ran = run_cli(capsys, "run", write_digits(tmp_path, rows, classes=3), "--headless", "--steps", "1")
    assert ran.code == 2 and ran.err.count("\n") == 1 and "Traceback" not in ran.err
    assert "d.csv:11: y: got 3.0; expected a class label from 0 to 2 for softmax" in ran.err


def test_a_class_missing_from_the_training_split_is_one_line_and_exit_2(tmp_path, capsys):
    """Class 2's only example lands in the test split (the first row of the sha256 order for split_seed 0)."""
    first = min(range(20), key=lambda i: hashlib.sha256(f"0:{i}".encode()).hexdigest())
    rows = [[0.1 * i, 1.0 - 0.1 * i, 2 if i == first else i % 2] for i in range(20)]
    ran = run_cli(capsys, "run", write_digits(tmp_path, rows, classes=3, test_fraction=0.25),
                  "--headless", "--steps", "1")
    assert ran.code == 2 and ran.err.count("\n") == 1 and "Traceback" not in ran.err
    assert "class 2 has no example in the training split" in ran.err
    rows[first][2] = 0                                        # no example of class 2 anywhere: the same line
    ran = run_cli(capsys, "run", write_digits(tmp_path, rows, classes=3), "--headless", "--steps", "1")
    assert ran.code == 2 and "class 2 has no example in the training split" in ran.err


@pytest.mark.slow
def test_each_runs_headless_from_the_built_wheel(tmp_path):
    """The wheel holds the data files; unpacked alone (python -S: no source tree, no editable-install hook,
    only the dependencies' folder) bsim scenarios lists every bundled scenario and each real-data one runs
    headless. pip builds it offline (no index, no build isolation); the runs get a proxy that refuses."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("bsim-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for fname, *_ in BUNDLED.values():
            assert f"bsim/scenarios/data/{fname}" in names
        assert "bsim/scenarios/data/DATA.md" in names
        zf.extractall(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(PYTHONPATH=str(tmp_path / "site"), PYTHONNOUSERSITE="1", NO_PROXY="*", http_proxy="http://0.0.0.0:9",
               https_proxy="http://0.0.0.0:9")
    deps = str(Path(torch.__file__).parents[1])      # the installed dependencies, without the source tree's hook
    runs = [["scenarios"]] + [["run", name, "--headless", "--steps", "20", "--metrics", str(tmp_path / f"{name}.csv")]
                              for name in BUNDLED]
    code = (f"import sys; sys.path.append({deps!r}); from bsim.cli import main\n"
            f"for argv in {runs!r}:\n    code = main(argv)\n    if code: raise SystemExit(code)")
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert all(f"\n{name} " in "\n" + run.stdout for name in BUNDLED)       # bsim scenarios lists them
    for name in BUNDLED:
        rows = list(csv.DictReader((tmp_path / f"{name}.csv").open()))
        assert rows and rows[-1]["step"] == "20" and rows[-1]["test_loss"]


@pytest.mark.slow
def test_the_data_view_of_digits_per_class_accuracy_and_images():
    """Per-class accuracy on the test split against a NumPy count; the images are the file's test rows."""
    from bsim.dataview import data_view
    p = make_problem(find_scenario("digits"), CPU, torch.float64)
    theta = p.theta_star
    view = data_view(p, theta)
    Xt, yt = p.X_test.numpy(), p.y_test.numpy().astype(int)
    guess = (Xt @ theta.numpy().reshape(-1, 10)).argmax(1)
    for k in range(10):
        assert view.extra["class_acc"][k] == pytest.approx((guess[yt == k] == k).mean(), abs=1e-12)
    assert view.extra["accuracy"] == pytest.approx((guess == yt).mean(), abs=1e-12)
    table = np.loadtxt(DATA / "digits.csv", delimiter=",", skiprows=1)
    test_rows = sorted(sorted(range(len(table)), key=lambda i: hashlib.sha256(f"0:{i}".encode()).hexdigest())[:449])
    assert np.array_equal(view.extra["images"][0].reshape(-1), table[test_rows[0], :-1])
    assert np.array_equal(view.truth, yt[:8]) and np.array_equal(view.predicted, guess[:8])
