"""bsim sweep --on train_acc|test_acc: steps until a classifier's accuracy reaches the target (>=).

The steps the sweep reports are checked against a plain loop written here: the bundled sweep-logreg
scenario (16 features, overlapping classes: about 68% is the best a linear classifier does), loaded
again, its batch size set by hand, stepped until its frame's train_acc (or test_acc) reaches the target.
"""

from __future__ import annotations

import pytest
from support.cli import read_rows

from bsim.cli import main
from bsim.scenario import find_scenario
from bsim.simulation import Simulation
from bsim.sweep import load_sweep

SMALL_LOGREG = """title = "small logistic regression"
seed = 0
[problem]
kind = "logreg"
n_train = 256
n_test = 64
dim = 4
[optimizer]
lr = 0.5
batch_size = 8
"""


def steps_until(which: str, batch_size: int, target: float, limit: int = 5000) -> tuple[int, float]:
    """(S, the accuracy at S): the first step whose frame's accuracy is >= target, by a plain loop."""
    sc = find_scenario("sweep-logreg")
    sc.optimizer.batch_size = batch_size
    sim = Simulation(sc, stats=False)
    for _ in range(limit):
        sim.step()
        acc = getattr(sim.frame(timing=False), which)
        if acc >= target:
            return sim.step_count, acc
    raise AssertionError(f"{which} never reached {target} in {limit} steps")


@pytest.mark.slow
@pytest.mark.parametrize("on, target", [("train_acc", 0.65), ("test_acc", 0.62)])
def test_steps_to_an_accuracy_equal_a_plain_loop(tmp_path, capsys, on, target):
    out = tmp_path / "acc.csv"
    assert main(["sweep", "sweep-logreg", "--batch-sizes", "4,16,64", "--on", on, "--target", str(target), "--seeds", "1",
                 "--lr-rule", "none", "--out", str(out), "--workers", "1", "--no-plots", "--no-calibration"]) == 0
    printed = capsys.readouterr().out
    assert f"steps until the {on.removesuffix('_acc')} accuracy >= {target:g}" in printed
    rows = {int(r["batch_size"]): r for r in read_rows(out)}
    for b in (4, 16, 64):
        r = rows[b]
        assert r["reached"] == "true" and r["on"] == on and r["target_loss"] == ""
        steps, acc = steps_until(on, b, target)
        assert int(r["steps"]) == steps > 1, (b, r["steps"], steps)
        assert float(r[on]) == acc >= target         # the accuracy where the task stopped: the loop's, exactly
    summary, _ = load_sweep(out)
    assert [pb.mean_steps for pb in summary.per_b] == [float(rows[b]["steps"]) for b in (4, 16, 64)]


def test_the_sweep_table_may_ask_for_an_accuracy(tmp_path, capsys):
    p = tmp_path / "acc.toml"
    p.write_text(SMALL_LOGREG + '[sweep]\nbatch_sizes = [8, 64]\non = "train_acc"\ntarget = 0.7\n')
    out = tmp_path / "acc.csv"
    assert main(["sweep", str(p), "--out", str(out), "--workers", "1", "--no-plots", "--no-calibration"]) == 0
    capsys.readouterr()
    rows = read_rows(out)
    assert {r["on"] for r in rows} == {"train_acc"} and all(float(r["train_acc"]) >= 0.7 for r in rows)


def test_a_loss_sweep_of_a_classifier_records_its_accuracy_and_least_squares_none(small, tmp_path, capsys):
    p = tmp_path / "lr.toml"
    p.write_text(SMALL_LOGREG)
    for scenario, target, classifier in ((p, "opt+0.05", True), (small, "opt+0.05", False)):
        out = tmp_path / f"{scenario.stem}.csv"
        assert main(["sweep", str(scenario), "--batch-sizes", "8", "--target", target, "--out", str(out),
                     "--workers", "1", "--no-plots", "--no-calibration"]) == 0
        r = read_rows(out)[0]
        if classifier:
            assert 0.5 < float(r["train_acc"]) <= 1 and 0.5 < float(r["test_acc"]) <= 1
        else:
            assert r["train_acc"] == r["test_acc"] == ""
    capsys.readouterr()


@pytest.mark.parametrize("scenario, args, message", [
    ("{small}", ["--on", "train_acc", "--target", "0.9"], "the linreg problem is not a classifier"),
    ("{logreg}", ["--on", "train_acc", "--target", "1.5"], "expected a fraction in (0, 1]"),
    ("{logreg}", ["--on", "test_acc", "--target", "0"], "expected a fraction in (0, 1]"),
    ("{logreg}", ["--on", "train_acc", "--target", "opt+0.1"], "not opt+EPS"),
    ("{logreg}", ["--on", "train_acc", "--target", "0.2"], "already"),
    ("{notest}", ["--on", "test_acc", "--target", "0.9"], "no test set"),
    ("{logreg}", ["--on", "accuracy", "--target", "0.9"], "invalid choice"),
    ("{table}", [], "the linreg problem is not a classifier"),
])
def test_bad_accuracy_targets_are_one_line_and_exit_2(small, tmp_path, capsys, scenario, args, message):
    logreg = tmp_path / "logreg.toml"
    logreg.write_text(SMALL_LOGREG)
    notest = tmp_path / "notest.toml"
    notest.write_text(SMALL_LOGREG.replace("n_test = 64", "n_test = 0"))
    table = tmp_path / "table.toml"
    table.write_text(small.read_text() + '[sweep]\non = "train_acc"\ntarget = 0.9\n')
    path = scenario.format(small=small, logreg=logreg, notest=notest, table=table)
    code = main(["sweep", path, "--batch-sizes", "8,16", *args, "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("bsim: error:") and "\n" not in err and "Traceback" not in err
    assert message in err, err
    assert not (tmp_path / "o.csv").exists()
