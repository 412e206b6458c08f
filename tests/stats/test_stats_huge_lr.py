"""Absurd learning rates end as a divergence through the real CLI, with no traceback and no numpy warning.

Issue 12: ``--lr 1e154`` (or a scenario lr of 1e308) with ``--every 1`` raised
LinAlgError in the ball prediction (bsim/stats/lyapunov.py), exit 1, no
metrics, and numpy RuntimeWarnings with source lines reached stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from support import ROOT
from support.cli import read_table

from bsim.cli import main


@pytest.mark.slow
def test_lr_1e154_every_step_is_a_divergence_on_a_clean_stderr(tmp_path):
    out = tmp_path / "m.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "bsim", "run", "default", "--headless", "--steps", "50",
                           "--no-timing", "--every", "1", "--lr", "1e154", "--metrics", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsim: diverged at step"), proc.stderr[-2000:]
    rows = read_table(out)
    assert rows[0][0] == "step" and len(rows) >= 2 and rows[1][0] == "1"


SCENARIOS = {
    # (a file's lr, problem lines): d = 2 (the exact ball), d = 50 (the additive approximation),
    # logistic regression (bounded gradients: no divergence, the prediction says unstable)
    "linreg-1e308": ("1e308", ""),
    "linreg-d50": ("1e200", "dim = 50\nn_train = 256\n"),
    "logreg-1e200": ("1e200", "kind = \"logreg\"\n"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_huge_lr_in_a_scenario_never_raises_or_warns(tmp_path, capsys, name, momentum):
    lr, problem = SCENARIOS[name]
    kind = "" if "kind" in problem else "kind = \"linreg\"\n"
    path = tmp_path / "huge.toml"
    path.write_text(f"title = \"huge lr\"\n[problem]\n{kind}{problem}[optimizer]\nlr = {lr}\n")
    out = tmp_path / "m.csv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["run", str(path), "--headless", "--steps", "20", "--no-timing", "--every", "1",
                     "--momentum", str(momentum), "--metrics", str(out)])
    err = capsys.readouterr().err
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    rows = read_table(out)
    header = rows[0]
    if name.startswith("logreg"):
        assert code == 0 and len(rows) == 21
    else:
        assert code == 3 and "diverged" in err and len(rows) >= 2
    # the prediction says there is no stationary ball: an empty ball_radius_theory cell in every row
    col = header.index("ball_radius_theory")
    assert all(r[col] == "" for r in rows[1:])
