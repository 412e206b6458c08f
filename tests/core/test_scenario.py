"""Scenario files: the bundled ones, parsing, defaults, round trips, overrides,
the [sweep] table, and the line numbers in validation messages (the CLI's view is in test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bsim.errors import BsimInputError
from bsim.scenario import (
    Event,
    apply_overrides,
    bundled_names,
    find_scenario,
    load_scenario,
    parse_scenario,
    scenario_to_toml,
)

FULL = """\
title = "T"
description = "D"
seed = 7
device = "cpu"
dtype = "float64"

[problem]
kind = "logreg"
n_train = 300
n_test = 50
dim = 3
condition = 2.5
l2 = 0.001

[optimizer]
lr = 0.5
momentum = 0.9
batch_size = 16
lr_scaling = "sqrt"
sampling = "replacement"
drop_last = true

[[timeline]]
at = 40
batch_size = 64
caption = "later"

[[timeline]]
at = 10
lr = 0.25
sampling = "iid"
pause = true
"""


def test_at_least_five_bundled_scenarios_with_titles_and_descriptions():
    names = bundled_names()
    for needed in ("default", "logreg", "lstm", "linear-scaling", "shuffle-vs-iid"):
        assert needed in names
    for name in names:
        sc = find_scenario(name)
        assert sc.title and sc.title != "Untitled" and len(sc.description) > 20


def test_bundled_linear_scaling_multiplies_b_and_lr_together():
    sc = find_scenario("linear-scaling")
    assert sc.optimizer.lr_scaling == "linear"
    assert any(ev.batch_size and ev.batch_size != sc.optimizer.batch_size for ev in sc.timeline)


def test_bundled_shuffle_vs_iid_switches_sampling():
    sc = find_scenario("shuffle-vs-iid")
    modes = {sc.optimizer.sampling} | {ev.sampling for ev in sc.timeline if ev.sampling}
    assert modes == {"iid", "shuffle"}


def test_full_file_is_read_with_every_field():
    sc = parse_scenario(FULL, "full.toml")
    assert (sc.title, sc.seed, sc.device, sc.dtype) == ("T", 7, "cpu", "float64")
    p, o = sc.problem, sc.optimizer
    assert (p.kind, p.n_train, p.n_test, p.dim, p.condition, p.l2) == ("logreg", 300, 50, 3, 2.5, 0.001)
    assert (o.lr, o.momentum, o.batch_size, o.lr_scaling, o.sampling, o.drop_last) == \
        (0.5, 0.9, 16, "sqrt", "replacement", True)
    # events sorted by step
    assert [ev.at for ev in sc.timeline] == [10, 40]
    assert sc.timeline[0] == Event(at=10, lr=0.25, sampling="iid", pause=True)
    assert sc.timeline[1] == Event(at=40, batch_size=64, caption="later")


def test_defaults_and_integer_numbers():
    sc = parse_scenario("[optimizer]\nlr = 1\n")
    assert sc.optimizer.lr == 1.0 and isinstance(sc.optimizer.lr, float)
    assert sc.problem.kind == "linreg" and sc.optimizer.sampling == "shuffle"
    assert sc.resolved_dtype() == "float64"
    assert parse_scenario('[problem]\nkind = "lstm"\n').resolved_dtype() == "float32"


def test_events_at_one_step_keep_file_order():
    sc = parse_scenario("[[timeline]]\nat = 5\nbatch_size = 2\n[[timeline]]\nat = 1\nlr = 1.0\n"
                        "[[timeline]]\nat = 5\nbatch_size = 3\n")
    assert [(e.at, e.batch_size) for e in sc.timeline] == [(1, None), (5, 2), (5, 3)]


def test_round_trip_through_toml():
    sc = parse_scenario(FULL, "full.toml")
    again = parse_scenario(scenario_to_toml(sc), "again.toml")
    for attr in ("title", "description", "seed", "device", "dtype", "problem", "optimizer", "timeline"):
        assert getattr(again, attr) == getattr(sc, attr), attr


def test_round_trip_of_tricky_strings():
    sc = parse_scenario('title = "a \\"quoted\\" \\\\ back"\n[[timeline]]\nat = 0\ncaption = "two\\nlines"\n')
    again = parse_scenario(scenario_to_toml(sc))
    assert again.title == 'a "quoted" \\ back' and again.timeline[0].caption == "two\nlines"


def test_overrides_return_a_copy():
    sc = find_scenario("default")
    o = apply_overrides(sc, batch_size=64, lr=0.2, momentum=0.5, seed=3, sampling="iid", lr_scaling="linear",
                        device="cpu", dtype="float32", problem=None)
    assert (o.optimizer.batch_size, o.optimizer.lr, o.optimizer.momentum, o.seed) == (64, 0.2, 0.5, 3)
    assert (o.optimizer.sampling, o.optimizer.lr_scaling, o.device, o.dtype) == ("iid", "linear", "cpu", "float32")
    assert sc.optimizer.batch_size == 8 and sc.seed == 0
    assert apply_overrides(sc, problem="lstm").problem.kind == "lstm"
    assert apply_overrides(sc, problem="linreg").problem == sc.problem


def test_problem_override_takes_that_problems_settings_then_the_other_flags():
    """`bsim run default --problem lstm`: the LSTM's own lr and B (linreg's lr 0.05 would barely move it)."""
    sc, lstm = find_scenario("default"), find_scenario("lstm")
    o = apply_overrides(sc, problem="lstm")
    assert o.problem == lstm.problem and o.optimizer == lstm.optimizer and o.seed == sc.seed
    o = apply_overrides(sc, batch_size=64, problem="lstm")      # the flag wins, whatever the order
    assert o.optimizer.batch_size == 64 and o.optimizer.lr == lstm.optimizer.lr


def test_data_paths_resolve_against_the_scenario_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.csv").write_text("x,y\n1,2\n2,3\n")
    (tmp_path / "sub" / "s.toml").write_text('[problem]\ndata = "train.csv"\n')
    sc = load_scenario(tmp_path / "sub" / "s.toml")
    assert sc.resolve(sc.problem.data) == (tmp_path / "sub" / "train.csv").resolve()


def test_find_scenario_by_name_and_path(tmp_path):
    assert find_scenario(None).title == find_scenario("default").title
    p = tmp_path / "mine.toml"
    p.write_text('title = "mine"\n')
    assert find_scenario(str(p)).title == "mine"
    with pytest.raises(BsimInputError, match="no such scenario.*default"):
        find_scenario("no-such-name")


@pytest.mark.parametrize("text,where,what", [
    ('seed = 1\n\n[optimizer]\nlr = 0.1\nbatch_size = 0\n', "x.toml:5: optimizer.batch_size", "got 0, expected an integer >= 1"),
    ('[problem]\nkind = "mlp"\n', "x.toml:2: problem.kind", "got 'mlp', expected one of linreg, logreg, lstm"),
    ('[[timeline]]\nat = 1\n[[timeline]]\nat = 2\nbogus = 3\n', "x.toml:5: timeline[1].bogus", "got an unknown key"),
    ('[optimizer]\nlr = 1\n[ optimiser ]\nlr = 2\n', "x.toml:3: optimiser", "got an unknown key"),
    ('a = 1\nb = \n', "x.toml:2: not valid TOML", "column 5"),
    ('[[timeline]]\nbatch_size = 2\n', "x.toml:1: timeline[0] has no 'at'", "expected the step number"),
    # the [sweep] table: an unknown key, wrong types, values out of range, each with its line
    ('seed = 1\n\n[sweep]\nseeds = 2\ncolour = "red"\n', "x.toml:5: sweep.colour",
     "got an unknown key, expected one of batch_sizes, target, on, seeds, lr_rule, lr_grid, max_steps"),
    ('[optimizer]\nbatch_size = 4\n[sweep]\nbatch_sizes = "1,2,4"\n', "x.toml:4: sweep.batch_sizes",
     "got '1,2,4', expected a non-empty list of integers >= 1"),
    ('[sweep]\nbatch_sizes = [1, 2.5]\n', "x.toml:2: sweep.batch_sizes", "got [1, 2.5], expected"),
    ('[sweep]\nbatch_sizes = [4, 0]\n', "x.toml:2: sweep.batch_sizes", "got [4, 0], expected"),
    ('[sweep]\nbatch_sizes = []\n', "x.toml:2: sweep.batch_sizes", "got [], expected a non-empty list"),
    ('[sweep]\ntarget = "opt+0"\n', "x.toml:2: sweep.target", "got 'opt+0', expected a finite loss (or accuracy), or \"opt+EPS\""),
    ('[sweep]\ntarget = "0.1"\n', "x.toml:2: sweep.target", "got '0.1', expected a finite loss"),
    ('[sweep]\ntarget = nan\n', "x.toml:2: sweep.target", "got nan, expected a finite loss"),
    ('[sweep]\ntarget = true\n', "x.toml:2: sweep.target", "got True, expected"),
    ('[sweep]\non = "valid"\n', "x.toml:2: sweep.on", "got 'valid', expected one of train, test"),
    ('[sweep]\nseeds = 0\n', "x.toml:2: sweep.seeds", "got 0, expected an integer >= 1"),
    ('[sweep]\nseeds = true\n', "x.toml:2: sweep.seeds", "got True, expected an integer >= 1"),
    ('[sweep]\nlr_rule = "cubic"\n', "x.toml:2: sweep.lr_rule", "expected one of none, linear, sqrt, tuned"),
    ('[sweep]\nlr_grid = [0.1, 0]\n', "x.toml:2: sweep.lr_grid", "expected a non-empty list of finite numbers > 0"),
    ('[sweep]\nlr_grid = 0.1\n', "x.toml:2: sweep.lr_grid", "got 0.1, expected a non-empty list"),
    ('[sweep]\nmax_steps = 1.5\n', "x.toml:2: sweep.max_steps", "got 1.5, expected an integer >= 1"),
    ('sweep = [1, 2]\n', "x.toml:1: sweep", "expected a table [sweep]"),
])
def test_messages_name_the_line_and_the_key(text, where, what):
    with pytest.raises(BsimInputError) as err:
        parse_scenario(text, "x.toml")
    msg = str(err.value)
    assert msg.startswith(where) and what in msg and "\n" not in msg


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(BsimInputError, match="no such file"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(BsimInputError, match="no such file"):
        find_scenario(str(Path(tmp_path) / "nope.toml"))


SWEEP = """
[sweep]
batch_sizes = [1, 4, 16]
target = "opt+0.05"
on = "test"
seeds = 2
lr_rule = "tuned"
lr_grid = [0.5, 1]
max_steps = 500
"""


def test_sweep_table_is_read_and_round_trips():
    sc = parse_scenario(FULL + SWEEP, "s.toml")
    assert sc.sweep == {"batch_sizes": (1, 4, 16), "target": "opt+0.05", "on": "test", "seeds": 2,
                        "lr_rule": "tuned", "lr_grid": (0.5, 1.0), "max_steps": 500}
    again = parse_scenario(scenario_to_toml(sc), "again.toml")
    assert again == sc
    # a number target stays a number; a file without the table has none, and writes none back
    plain = parse_scenario('[sweep]\ntarget = 1\n')
    assert plain.sweep == {"target": 1.0} and parse_scenario(scenario_to_toml(plain)).sweep == {"target": 1.0}
    assert parse_scenario(FULL).sweep is None and "[sweep]" not in scenario_to_toml(parse_scenario(FULL))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sweep-linreg", "sweep-logreg", "sweep-lstm"])
def test_a_bundled_sweep_scenario_runs_with_bsim_run_which_ignores_the_table(name, tmp_path):
    """`bsim run sweep-X --headless --steps 10` works, and gives the same rows as the file without [sweep]."""
    from bsim.cli import main
    sc = find_scenario(name)
    assert sc.sweep and sc.sweep["batch_sizes"]
    text = sc.path.read_text()
    table = text.index("[sweep]")
    assert "\n[" not in text[table:], "keep [sweep] the last table, so this test can cut it off"
    (tmp_path / "no-sweep.toml").write_text(text[:table])
    assert load_scenario(tmp_path / "no-sweep.toml").sweep is None
    rows = {}
    for label, scenario in (("with", name), ("without", str(tmp_path / "no-sweep.toml"))):
        out = tmp_path / f"{label}.csv"
        assert main(["run", scenario, "--headless", "--steps", "10", "--no-timing", "--metrics", str(out)]) == 0
        rows[label] = out.read_text().splitlines()
    assert len(rows["with"]) == 11 and rows["with"] == rows["without"]


def test_a_scenario_with_a_sweep_table_records_and_replays(tmp_path):
    from bsim import actions
    from bsim.cli import main
    from bsim.recording import Recorder
    from bsim.simulation import Simulation
    sc = find_scenario("sweep-logreg")
    sim = Simulation(sc)
    rec = Recorder.start(tmp_path / "rec.toml", scenario=sc)
    for t in range(30):
        if t == 10:
            sim.apply(actions.SetBatchSize(4))
            rec.add(t, actions.SetBatchSize(4))
        assert sim.step()
    rec.stop(sim)
    assert load_scenario(tmp_path / "rec.toml").sweep == sc.sweep
    # the replay runs to the recorded step and checks the parameters' hash there (exit 0 only if it matches)
    assert main(["replay", str(tmp_path / "rec.toml"), "--headless", "--no-timing",
                 "--metrics", str(tmp_path / "r.csv")]) == 0
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 31
