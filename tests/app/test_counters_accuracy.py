"""The counters show logistic regression's train and test accuracy (a percentage, marked measured), whole at
every size; least squares shows none.

The expected percentages are computed here in NumPy from the run's parameters and data (the fraction
of rows with (x . theta > 0) == y), not read from the frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from bsim.scenario import find_scenario
from tests.support.app import drive, panel_text


def fraction_right(X, y, theta) -> float:
    X, y, theta = X.double().numpy(), y.double().numpy(), theta.double().numpy()
    return float(np.mean((X @ theta > 0).astype(float) == y))


@pytest.mark.parametrize("size, labels, tag", [((80, 24), ("trn acc  ", "test acc "), "meas"),
                                               ((120, 36), ("train acc   ", "test acc    "), "measured")],
                         ids=["80x24", "120x36"])
def test_logreg_counters_show_train_and_test_accuracy_whole(tmp_path, size, labels, tag):
    async def script(d):
        await d.press("m")                    # momentum: one more row, the tallest panel a user can get
        for _ in range(20):
            await d.steps(50)
        p, theta = d.sim.problem, d.sim.theta
        return panel_text(d.app, "counters"), fraction_right(p.X, p.y, theta), fraction_right(p.X_test, p.y_test, theta)

    _app, (text, train, test) = drive(tmp_path, script, sc=find_scenario("logreg"), size=size)
    lines = [ln.strip() for ln in text.splitlines()]
    for label, value in zip(labels, (train, test)):
        assert 0.5 < value < 1.0                                   # trained, on overlapping classes
        gap = "  " if tag == "measured" else " "
        row = f"{label}{100 * value:.1f}%{gap}{tag}"
        # a whole line of the panel, ending in its tag: nothing cut at the border
        assert row in lines, (row, text)


def test_least_squares_counters_show_no_accuracy(tmp_path):
    async def script(d):
        await d.steps(50)
        return panel_text(d.app, "counters")

    _app, text = drive(tmp_path, script, sc=find_scenario("default"), size=(120, 36))
    assert "step" in text and "acc" not in text and "%" not in text
