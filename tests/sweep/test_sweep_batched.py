"""Sweeps as batched runs: a batch size's tasks (the lr grid x the seeds) stepped together give each task
the row of its run alone; the sampler's bulk draws; resuming; the engines' choice."""

import math

import pytest
import torch
from support.sweep import SMALL, spec_of, without_wall

from bsim.progress import Progress
from bsim.sampler import Sampler
from bsim.scenario import load_scenario
from bsim.sweep import state
from bsim.sweep.batched import batchable, run_batch
from bsim.sweep.engines import run_sweep
from bsim.sweep.spec import SweepSpec
from bsim.sweep.task import run_task

QUIET = Progress(1, enabled=False)
EXACT = ("reached", "diverged", "stop", "steps", "samples", "check_every", "target_loss")
CLOSE = ("train_loss", "test_loss", "b_simple", "b_noise", "train_acc", "test_acc")

LOGREG = """title = "small logistic regression"
description = "momentum and l2: the batched run's general step"
seed = 0
[problem]
kind = "logreg"
n_train = 200
n_test = 50
dim = 5
condition = 10.0
l2 = 0.01
[optimizer]
lr = 0.5
batch_size = 4
momentum = 0.5
"""


def assert_same_rows(batched, alone):
    """Every field a user reads equal; the floats to rounding (bmm against matrix-vector products)."""
    for b, a in zip(batched, alone):
        rb, ra = b.row, a.row
        assert b.task == a.task
        if ra["diverged"]:      # a diverged chain may stop a step or two earlier (bsim.sweep.batched)
            assert rb["diverged"] and 0 <= ra["steps_run"] - rb["steps_run"] <= 2
            continue
        assert {k: rb[k] for k in EXACT + ("steps_run",)} == {k: ra[k] for k in EXACT + ("steps_run",)}, b.task
        for k in CLOSE:
            if ra[k] is None:
                assert rb[k] is None
            elif math.isfinite(ra[k]):
                assert rb[k] == pytest.approx(ra[k], rel=1e-9, abs=1e-12), (b.task, k)
        assert [p[:2] for p in b.curve] == [p[:2] for p in a.curve]          # the same steps and samples kept
        for pb, pa in zip(b.curve, a.curve):
            for x, y in zip(pb[2:], pa[2:]):
                if y is not None and math.isfinite(y):
                    assert x == pytest.approx(y, rel=1e-8, abs=1e-12)


def test_a_batched_run_gives_each_task_the_row_of_its_run_alone(small):
    # lr 40 is far above 2/lambda_max: those chains overflow; 0.004 stops at max_steps; the others reach the target
    spec = spec_of(small, batch_sizes=(4,), seeds=(0, 1), lr_rule="tuned", lr_grid=(0.004, 0.1, 0.4, 40.0),
                   max_steps=300)
    tasks = tuple(spec.tasks())
    batched = sorted(run_batch(spec, tasks), key=lambda r: r.task)
    alone = sorted((run_task(spec, t) for t in tasks), key=lambda r: r.task)
    assert len(batched) == 8
    assert {r.row["stop"] for r in alone} == {"target", "diverged", "max_steps"}
    assert_same_rows(batched, alone)


def test_momentum_l2_and_an_accuracy_target_in_a_batched_logistic_regression(tmp_path):
    path = tmp_path / "logreg.toml"
    path.write_text(LOGREG)
    spec = SweepSpec(scenario=load_scenario(path), scenario_name="logreg", batch_sizes=(8,), target=0.7,
                     on="train_acc", seeds=(0, 1), lr_rule="tuned", lr_grid=(0.05, 0.5), max_steps=2000)
    tasks = tuple(spec.tasks())
    batched = sorted(run_batch(spec, tasks), key=lambda r: r.task)
    alone = sorted((run_task(spec, t) for t in tasks), key=lambda r: r.task)
    assert any(r.row["reached"] for r in alone)
    assert_same_rows(batched, alone)


@pytest.mark.parametrize("mode,drop_last", [("shuffle", False), ("shuffle", True), ("iid", False)])
def test_next_batches_draws_what_next_batch_draws_one_by_one(mode, drop_last):
    def sampler():
        g = torch.Generator()
        g.manual_seed(7)
        return Sampler(10, mode, drop_last, g, torch.device("cpu"))

    one, bulk = sampler(), sampler()
    for batch_size, count in ((3, 5), (4, 1), (3, 7), (10, 2), (20, 3), (1, 12)):
        a = [one.next_batch(batch_size) for _ in range(count)]
        b = bulk.next_batches(batch_size, count)
        assert [t.tolist() for t in a] == [t.tolist() for t in b]
        assert one.counters()[1:] == bulk.counters()[1:]


def test_a_resumed_batched_sweep_has_the_rows_of_one_run_whole(small, tmp_path):
    """A batched run steps all the spec's tasks at its B whatever is left, so the rows it adds are the
    rows of a run whole (a sweep killed between the rows of one batch size, or extended by a B)."""
    spec = spec_of(small, batch_sizes=(4, 16), seeds=(0, 1), lr_rule="tuned", lr_grid=(0.05, 0.2), max_steps=2000)
    assert batchable(spec)
    whole = run_sweep(spec, tmp_path / "whole.csv", progress=QUIET, quiet=True).rows
    part = tmp_path / "part.csv"
    run_sweep(spec_of(small, batch_sizes=(4,), seeds=(0, 1), lr_rule="tuned", lr_grid=(0.05, 0.2),
                      max_steps=2000), part, progress=QUIET, quiet=True)
    rows = state.read_rows(part)
    state.write_rows(part, [r for r in rows if (r["seed"], r["lr"]) != (1, 0.2)])    # killed before its last row
    out = run_sweep(spec, part, progress=QUIET, quiet=True)
    assert (out.ran, out.skipped) == (5, 3)
    assert without_wall(out.rows) == without_wall(whole)


def test_only_float64_linear_problems_run_batched(small, tmp_path):
    assert batchable(spec_of(small))
    f32 = tmp_path / "f32.toml"
    f32.write_text(SMALL.replace('seed = 0', 'seed = 0\ndtype = "float32"'))
    assert not batchable(spec_of(f32))


def test_next_batches_of_the_ensemble_s_sampler_are_its_own_draws():
    from bsim.ensemble.sampler import ChainsSampler

    def sampler():
        g = torch.Generator()
        g.manual_seed(3)
        return ChainsSampler(10, 4, "shuffle", False, g, torch.device("cpu"))

    one, bulk = sampler(), sampler()
    a = [one.next_batch(3) for _ in range(5)]
    assert [t.tolist() for t in bulk.next_batches(3, 5)] == [t.tolist() for t in a]
