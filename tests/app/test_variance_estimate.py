"""The two-batch estimate of tr(Σ) (the LSTM) is a difference of two noisy squared norms and can fall below 0:
the variance panel then says it is an estimate, in red, and gives no ratio; an exact tr(Σ) of 0 (a landscape at its
minimum) is not called an estimate."""

from __future__ import annotations

from types import SimpleNamespace

from bsim.app.widgets.variance import VariancePanel


def texts(groups_list) -> list[str]:
    return ["".join(t for _rank, parts in groups for t, _c in parts) for groups in groups_list]


def test_a_negative_two_batch_estimate_is_called_an_estimate_and_gets_no_ratio():
    here = (4, 2.0, 40, 0.5, -0.67)          # (B, measured mean, steps, se, theory over the same steps)
    for line in texts(VariancePanel.readouts(4, here, -0.67, estimate=True)):
        assert "-0.67 est." in line and "×" not in line, line
    note = texts([VariancePanel.note(SimpleNamespace(n_train=1024), -2.69, None, None, None,
                                     "two-batch estimate (B and B/2 of the batch every 8 steps)", True, "")])[0]
    assert "trΣ -2.69 est. ≤ 0" in note, note


def test_an_exact_zero_is_not_an_estimate():
    here = (64, 3.3e-11, 40, 1e-12, 0.0)
    for line in texts(VariancePanel.readouts(64, here, 0.0, estimate=False)):
        assert "est." not in line, line
    note = texts([VariancePanel.note(SimpleNamespace(n_train=1024), 0.0, None, None, None,
                                     "exact: all N per-example gradients at the step's parameters", True, "")])[0]
    assert note.startswith("trΣ 0") and "est." not in note, note
