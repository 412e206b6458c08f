"""Recordings made by bsim 0.1.0 before the core was restructured replay to the same rows and pass their check.

tests/data/legacy/*.toml were written by that bsim (linreg, logreg and the LSTM from a
scenario's timeline with batch-size, sampling, lr, momentum and lr-scaling changes, and
``app.toml`` from the runner's own recorder: user actions, a caption and a reset);
the .csv beside each is its headless replay then, with --no-timing.
"""

import pytest
import torch
from support import DATA
from support.cli import read_rows

from bsim.cli import main
from bsim.problems import make_problem
from bsim.scenario import load_scenario

LEGACY = DATA / "legacy"
CASES = [("lin", 10), ("log", 10), ("app", 10), ("lstm", 4)]
#: columns whose definition changed on purpose since (issue 10): the temperature is lr (N/B - 1)/(1 - m)
#: (was lr N / (B (1 - m))), and under shuffle ball_radius_theory is the reshuffled prediction (was the iid
#: one). Every other column, the trajectory's included, must be the same string.
#: Since issue 23 logistic regression's test_loss is the data loss alone (it added (1/2) l2 |theta|^2).
REDEFINED = {"temperature", "ball_radius_theory", "test_loss"}


@pytest.mark.parametrize("name,every", CASES)
def test_a_recording_of_the_old_bsim_replays_to_the_same_rows(name, every, tmp_path, capsys):
    out = tmp_path / f"{name}.csv"
    code = main(["replay", str(LEGACY / f"{name}.toml"), "--headless", "--no-timing", "--every", str(every),
                 "--metrics", str(out)])
    err = capsys.readouterr().err
    assert code == 0
    assert "differs" not in err and "no check" not in err      # the recorded check matched
    old, new = read_rows(LEGACY / f"{name}.csv"), read_rows(out)
    assert len(new) == len(old) > 10
    for a, b in zip(old, new):
        assert {k: b[k] for k in a if k not in REDEFINED} == {k: v for k, v in a.items() if k not in REDEFINED}
        if b["ball_theory"] == "exact":     # least squares under iid or replacement: the same prediction
            assert b["ball_radius_theory"] == a["ball_radius_theory"]
    sc = load_scenario(LEGACY / f"{name}.toml")
    if sc.problem.kind != "logreg" or not sc.problem.l2:
        assert [r["test_loss"] for r in new] == [r["test_loss"] for r in old]
        return
    # old - new = (1/2) l2 |theta|^2, and | |theta*| - dist | <= |theta| <= |theta*| + dist
    star = float(make_problem(sc, torch.device("cpu"), torch.float64).theta_star.norm())
    for a, b in zip(old, new):
        gap, dist = float(a["test_loss"]) - float(b["test_loss"]), float(b["dist_to_opt"])
        lo, hi = 0.5 * sc.problem.l2 * (star - dist) ** 2, 0.5 * sc.problem.l2 * (star + dist) ** 2
        assert lo * (1 - 1e-9) <= gap <= hi * (1 + 1e-9) and gap > 0
