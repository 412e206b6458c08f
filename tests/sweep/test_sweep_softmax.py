"""bsim sweep --on test_acc on softmax regression: the steps it reports are those of a plain loop written here."""

from __future__ import annotations

from support.cli import read_rows

from bsim.cli import main
from bsim.scenario import load_scenario
from bsim.simulation import Simulation

SMALL_SOFTMAX = """title = "small softmax regression"
seed = 0
[problem]
kind = "softmax"
n_train = 256
n_test = 128
dim = 3
classes = 3
l2 = 0.01
[optimizer]
lr = 0.5
batch_size = 8
"""


def steps_until(path, batch_size: int, target: float, limit: int = 3000) -> int:
    sc = load_scenario(path)
    sc.optimizer.batch_size = batch_size
    sim = Simulation(sc, stats=False)
    for _ in range(limit):
        sim.step()
        if sim.frame(timing=False).test_acc >= target:
            return sim.step_count
    raise AssertionError(f"test_acc never reached {target} in {limit} steps")


def test_a_softmax_sweep_on_test_accuracy_equals_a_plain_loop(tmp_path, capsys):
    p = tmp_path / "softmax.toml"
    p.write_text(SMALL_SOFTMAX)
    out = tmp_path / "acc.csv"
    assert main(["sweep", str(p), "--batch-sizes", "8,32", "--on", "test_acc", "--target", "0.6", "--seeds", "1",
                 "--out", str(out), "--workers", "1", "--no-plots", "--no-calibration"]) == 0
    assert "steps until the test accuracy >= 0.6" in capsys.readouterr().out
    rows = {int(r["batch_size"]): r for r in read_rows(out)}
    for b in (8, 32):
        assert rows[b]["reached"] == "true" and rows[b]["problem"] == "softmax"
        assert int(rows[b]["steps"]) == steps_until(p, b, 0.6) > 1
