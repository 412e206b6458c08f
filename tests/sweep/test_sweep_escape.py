"""bsim sweep --on escape on a landscape: steps until half the chains escaped, against Kramers (issue 20)."""

from __future__ import annotations

import math

import pytest

from tests.support.cli import read_rows, run_cli


def test_an_escape_target_needs_a_landscape_and_a_fraction(tmp_path, capsys):
    ran = run_cli(capsys, "sweep", "default", "--on", "escape", "--target", "0.5", "--batch-sizes", "4",
                  "--out", tmp_path / "a.csv")
    assert ran.code == 2 and "--on escape: the linreg problem has no basins" in ran.err and ran.err.count("\n") == 1
    ran = run_cli(capsys, "sweep", "escape", "--target", "1.5", "--out", tmp_path / "b.csv")
    assert ran.code == 2 and "expected a fraction in (0, 1)" in ran.err and ran.err.count("\n") == 1


@pytest.mark.slow
def test_the_steps_until_half_the_chains_escaped_follow_kramers(tmp_path, capsys):
    out = tmp_path / "e.csv"
    ran = run_cli(capsys, "sweep", "escape", "--batch-sizes", "3,4", "--workers", "1", "--no-calibration",
                  "--no-plots", "--out", out)
    assert ran.code == 0, ran.err
    rows = {int(r["batch_size"]): r for r in read_rows(out)}
    for B in (3, 4):
        lr, T = 0.05, 0.05 * 16 / (2 * B)      # the escape scenario: tilts of spread 4, with replacement
        n = 2 * math.pi / (lr * math.sqrt(4.0 * 2.0)) * math.exp(0.4 / T)    # Kramers' mean steps
        assert float(rows[B]["kramers_steps"]) == pytest.approx(n * math.log(2), rel=1e-9)
        assert float(rows[B]["inv_lr_cb"]) == pytest.approx(B / lr)
        assert int(rows[B]["steps"]) == pytest.approx(n * math.log(2), rel=0.3)
    assert "against 1/(lr c_B)" in ran.out and "Kramers" in ran.out
