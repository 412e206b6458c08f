"""The steps-examples fit, the bootstrap, the lr kept per batch size, the flag parsers and the [sweep] table."""

import argparse
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsim.errors import BsimInputError
from bsim.sweep.analysis import kept_lrs, summarize
from bsim.sweep.command import add_arguments, build_spec
from bsim.sweep.defaults import parse_batch_sizes, parse_lr_grid, parse_target
from bsim.sweep.fit import bootstrap_b_crit, fit_tradeoff

POWERS = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], dtype=float)


def hyperbola(s_min, e_min, b):
    """Points exactly on (S/S_min - 1)(E/E_min - 1) = 1 with E = B S: S = S_min + E_min/B."""
    S = s_min + e_min / b
    return S, b * S


@settings(max_examples=60, deadline=None)
@given(s_min=st.floats(1, 1e4), b_crit=st.floats(2, 500))
def test_fit_recovers_s_min_and_e_min_from_points_on_the_hyperbola(s_min, b_crit):
    e_min = s_min * b_crit
    S, E = hyperbola(s_min, e_min, POWERS)
    assert np.allclose((S / s_min - 1) * (E / e_min - 1), 1.0)      # the points are on the curve
    f = fit_tradeoff(S, E, POWERS)
    assert f.ok
    assert f.s_min == pytest.approx(s_min, rel=1e-9)
    assert f.e_min == pytest.approx(e_min, rel=1e-9)
    assert f.b_crit == pytest.approx(b_crit, rel=1e-9)
    assert f.rms_rel < 1e-9


def test_fit_uses_measured_examples_not_b_times_s():
    # short last batches: E is a little less than B S; the fit is on (S, E) as measured
    s_min, e_min = 50.0, 2000.0
    b = np.array([3.9, 7.7, 15.2, 30.1, 61.0, 120.0])
    S = s_min + e_min / b
    f = fit_tradeoff(S, b * S, [4, 8, 16, 32, 64, 128])
    assert (f.s_min, f.e_min) == (pytest.approx(s_min), pytest.approx(e_min))


def test_fit_says_cannot_fit_on_degenerate_data():
    flat = fit_tradeoff([30.0] * 6, 30.0 * POWERS[:6], POWERS[:6])      # S does not fall with B
    assert not flat.ok and "cannot fit" in flat.reason and "past the knee" in flat.reason
    assert math.isnan(flat.b_crit)
    ideal = fit_tradeoff(4096 / POWERS, [4096.0] * 11, POWERS)         # S = c/B all the way
    assert not ideal.ok and "beyond the largest batch size" in ideal.reason
    two = fit_tradeoff([100.0, 60.0], [100.0, 120.0], [1, 2])
    assert not two.ok and "at least 3" in two.reason
    one_b = fit_tradeoff([100.0, 101.0, 99.0], [800.0, 808.0, 792.0], [8, 8, 8])
    assert not one_b.ok and "1 batch size" in one_b.reason
    none = fit_tradeoff([], [], [])
    assert not none.ok


def test_fit_of_rising_steps_is_refused():
    S = 10.0 * np.sqrt(POWERS[:5])          # more steps at larger B: no trade-off at all
    f = fit_tradeoff(S, S * POWERS[:5], POWERS[:5])
    assert not f.ok


def test_bootstrap_interval_collapses_when_seeds_agree_and_covers_their_spread():
    s_min, e_min = 20.0, 2000.0
    same = {int(b): [hyperbola(s_min, e_min, b)] * 3 for b in POWERS[:8]}
    sp = bootstrap_b_crit(same)
    assert sp.lo == pytest.approx(100.0) and sp.hi == pytest.approx(100.0)
    # three "seeds" on hyperbolas with B_crit 80, 100 and 125: the 68% interval lies within them
    groups = {int(b): [hyperbola(s_min, s_min * bc, b) for bc in (80.0, 100.0, 125.0)] for b in POWERS[:8]}
    sp = bootstrap_b_crit(groups)
    assert 80.0 <= sp.lo < 100.0 < sp.hi <= 125.0
    assert sp.n_ok == sp.n
    assert bootstrap_b_crit({int(b): [hyperbola(s_min, e_min, b)] for b in POWERS[:8]}) is None   # one seed


def _row(b, seed, lr, steps):
    return {"batch_size": b, "seed": seed, "lr": lr, "reached": steps is not None, "diverged": False,
            "steps": steps, "samples": None if steps is None else steps * b, "b_simple": 50.0, "b_noise": None,
            "target": "0.1", "on": "train", "lr_rule": "tuned", "max_steps": 1000, "scenario": "t", "problem": "linreg"}


def test_tuned_keeps_the_lr_that_reaches_the_target_in_fewest_steps_over_seeds():
    rows = [_row(4, 0, 0.1, 100), _row(4, 1, 0.1, 120),        # mean 110
            _row(4, 0, 0.2, 60), _row(4, 1, 0.2, None),        # faster once, but one seed never got there
            _row(4, 0, 0.05, 200), _row(4, 1, 0.05, 210),
            _row(8, 0, 0.1, 70), _row(8, 1, 0.1, 50), _row(8, 0, 0.2, 40), _row(8, 1, 0.2, 44)]
    assert kept_lrs(rows) == {4: 0.1, 8: 0.2}
    s = summarize(rows)
    assert [p.mean_steps for p in s.per_b] == [110, 42]


def test_batch_sizes_progressions_and_lists():
    assert parse_batch_sizes("1,2,4,...,1024") == tuple(2 ** k for k in range(11))
    assert parse_batch_sizes("8,16,24,...,64") == (8, 16, 24, 32, 40, 48, 56, 64)
    assert parse_batch_sizes("3, 9, ..., 243") == (3, 9, 27, 81, 243)
    assert parse_batch_sizes("64,8,32") == (8, 32, 64)
    for bad in ("1,2,4,...,1000", "0,1,2", "a,b", "1,...,8", "1,2,2", "4,6,...,9", ""):
        with pytest.raises(BsimInputError):
            parse_batch_sizes(bad)


def test_target_and_lr_grid_parsers():
    assert parse_target("0.25") == (0.25, False)
    assert parse_target("opt+0.01") == (0.01, True)
    for bad in ("opt+0", "opt+-1", "nan", "inf", "x"):
        with pytest.raises(BsimInputError):
            parse_target(bad)
    assert parse_lr_grid("0.4,0.1,0.2,0.1") == (0.1, 0.2, 0.4)
    for bad in ("0,1", "-1", "a", "inf"):
        with pytest.raises(BsimInputError):
            parse_lr_grid(bad)


SCENARIO = """title = "small least squares"
[problem]
kind = "linreg"
n_train = 256
dim = 4
[optimizer]
lr = 0.05
batch_size = 4
"""


def sweep_args(*argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


def test_the_sweep_table_of_a_scenario_gives_the_defaults_and_flags_override_them(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO + '[sweep]\nbatch_sizes = [16, 1, 4]\ntarget = "opt+0.1"\non = "test"\nseeds = 2\n'
                            'lr_rule = "tuned"\nlr_grid = [0.2, 0.1]\nmax_steps = 300\n')
    spec = build_spec(sweep_args(str(p), "--out", "x.csv"))
    assert (spec.batch_sizes, spec.target, spec.excess, spec.on) == ((1, 4, 16), 0.1, True, "test")
    assert (spec.seeds, spec.lr_rule, spec.lr_grid, spec.max_steps) == ((0, 1), "tuned", (0.1, 0.2), 300)
    spec = build_spec(sweep_args(str(p), "--out", "x.csv", "--batch-sizes", "2,8", "--target", "opt+0.2", "--on",
                                 "train", "--seeds", "3", "--seed", "5", "--lr-rule", "linear", "--max-steps", "50"))
    assert (spec.batch_sizes, spec.target, spec.excess, spec.on) == ((2, 8), 0.2, True, "train")
    assert (spec.seeds, spec.lr_rule, spec.lr_grid, spec.max_steps) == ((5, 6, 7), "linear", (), 50)
    # what neither gives is missing, and the message says where it could have come from
    p.write_text(SCENARIO + "[sweep]\ntarget = 0.5\n")
    with pytest.raises(BsimInputError, match=r"^--batch-sizes: missing; .* \(or batch_sizes = \.\.\. in the \[sweep\] "
                                             r"table of s\.toml\)$"):
        build_spec(sweep_args(str(p), "--out", "x.csv"))
    # a bad table is the scenario's error: file, line, key
    p.write_text(SCENARIO + "[sweep]\nbatch_sizes = [1, 4]\nseeds = 0\n")
    with pytest.raises(BsimInputError, match=r"s\.toml:11: sweep\.seeds: got 0, expected an integer >= 1"):
        build_spec(sweep_args(str(p), "--out", "x.csv"))
