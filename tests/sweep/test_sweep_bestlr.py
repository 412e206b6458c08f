"""Where linear scaling breaks: the best lr per batch size, its slopes, McCandlish et al.'s law fitted."""

import math

import numpy as np
import pytest

from bsim.sweep.bestlr import best_knee, best_lrs, fit_law, slope


def row(b, lr, steps, reached=True):
    return {"batch_size": b, "lr": lr, "steps": steps if reached else None, "reached": reached}


def test_the_slope_of_a_power_law_is_its_exponent():
    assert slope([(b, 0.01 * b) for b in (1, 2, 4, 8)]) == pytest.approx(1.0)
    assert slope([(b, 3.0 * b ** 0.5) for b in (4, 16, 64)]) == pytest.approx(0.5)
    assert slope([(8, 0.1)]) is None


def test_the_law_is_recovered_from_points_on_it():
    knee, lr_max = 40.0, 1.7
    pts = [(b, lr_max / (1 + knee / b)) for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)]
    fit = fit_law(pts, knee)
    assert fit.lr_max == pytest.approx(lr_max, rel=1e-12) and fit.rms < 1e-12
    # with the wrong knee the fit is worse, and the search finds the right one
    assert fit_law(pts, 4 * knee).rms > 0.3
    free = best_knee(pts)
    assert free.knee == pytest.approx(knee, rel=0.01) and free.lr_max == pytest.approx(lr_max, rel=0.01)
    # the rms is of ln lr: points off the law by a factor e^0.1 both ways give rms 0.1
    off = [(b, lr * math.exp(0.1 * (-1) ** k)) for k, (b, lr) in enumerate(pts)]
    assert fit_law(off, knee).rms == pytest.approx(0.1, rel=1e-9)
    assert np.allclose(fit.at([1, 40]), [lr_max / 41, lr_max / 2])


def test_the_best_lr_reaches_most_often_then_fewest_steps_and_ties_count_at_their_geometric_mean():
    rows = [row(4, 0.1, 300), row(4, 0.1, 310),
            row(4, 0.2, 150), row(4, 0.2, 160), row(4, 0.4, 150), row(4, 0.4, 160),   # tied: 155 steps
            row(4, 0.8, 40), row(4, 0.8, 0, reached=False),                            # fewer reach
            row(8, 0.8, 0, reached=False)]                                              # none reaches at B = 8
    assert best_lrs(rows) == [(4, pytest.approx(math.sqrt(0.2 * 0.4)))]


@pytest.mark.slow
def test_the_bundled_sweep_s_best_lr_rises_as_b_below_b_crit_and_flattens_past_it(tmp_path):
    """sweep-linreg-lr (least squares, lr grid 2^(k/4), 3 seeds, batched): slope 0.8..1.2 of ln lr on ln B over
    B <= B_crit/4, below 0.5 over B >= 4 B_crit; the report and the plot say so, with McCandlish et al.'s law."""
    from bsim.progress import Progress
    from bsim.scenario import find_scenario
    from bsim.sweep import load_sweep
    from bsim.sweep.engines import run_sweep
    from bsim.sweep.plots import render
    from bsim.sweep.spec import SweepSpec
    sc = find_scenario("sweep-linreg-lr")
    d = sc.sweep
    spec = SweepSpec(scenario=sc, scenario_name="sweep-linreg-lr", batch_sizes=tuple(d["batch_sizes"]), target=0.1,
                     excess=True, seeds=(0, 1, 2), lr_rule="tuned", lr_grid=tuple(d["lr_grid"]),
                     max_steps=d["max_steps"])
    out = tmp_path / "lr.csv"
    run_sweep(spec, out, progress=Progress(1, enabled=False), quiet=True)
    summary, curves = load_sweep(out)
    assert summary.fit.ok and 30 < summary.fit.b_crit < 100
    law = summary.best_lr()
    assert law.small == [1, 2, 4, 8] and 0.8 <= law.slope_small <= 1.2
    assert law.large and min(law.large) >= 4 * summary.fit.b_crit and law.slope_large < 0.5
    text = "\n".join(summary.lines())
    assert f"slope of ln lr against ln B {law.slope_small:.2f} over B <= B_crit/4" in text
    assert f"B_noise = {summary.b_noise:.3g} (measured): fitted lr_max = {law.measured.lr_max:.3g}" in text
    assert "best lr against B" in render(summary, curves)
