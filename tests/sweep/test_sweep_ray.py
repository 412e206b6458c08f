"""The Ray engine against a local Ray started here: the same rows as in-process, and a lost worker is retried."""

import functools
import os
import sys

import pytest
from support.sweep import SMALL, spec_of, without_wall

from bsim.sweep import state
from bsim.sweep.engines import Progress, run_sweep
from bsim.sweep.task import run_task

pytestmark = pytest.mark.slow      # a local Ray
ray = pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]' (.ci/run installs it)")

# the crash-once task below is defined here: ship this module to the workers by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


QUIET = Progress(1, enabled=False)


def test_ray_gives_the_rows_of_an_in_process_run(local_ray, small, tmp_path):
    spec = spec_of(small, batch_sizes=(1, 4, 16, 64), seeds=(0, 1))
    here = run_sweep(spec, tmp_path / "here.csv", workers=1, progress=QUIET, quiet=True).rows
    there = run_sweep(spec, tmp_path / "ray.csv", use_ray=True, progress=QUIET, quiet=True).rows
    assert len(there) == 8
    assert without_wall(there) == without_wall(here)
    name = "B16-seed1-lr0.2.csv"
    assert (tmp_path / "ray.curves" / name).read_text() == (tmp_path / "here.curves" / name).read_text()


def crash_once_in(folder):
    """A task function that kills its worker process the first time the B = 16 task runs (a lost node)."""
    def crash_once(spec, task):
        marker = os.path.join(folder, f"{task.name}.crashed")
        if task.batch_size == 16 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return run_task(spec, task)
    return crash_once


def test_a_task_whose_ray_worker_dies_is_retried(local_ray, small, tmp_path):
    spec = spec_of(small, batch_sizes=(4, 16), seeds=(0,))
    rows = run_sweep(spec, tmp_path / "ray.csv", use_ray=True, task_fn=crash_once_in(str(tmp_path)),
                     progress=QUIET, quiet=True).rows
    assert (tmp_path / "B16-seed0-lr0.2.crashed").exists()        # the worker did die once
    here = run_sweep(spec, tmp_path / "here.csv", workers=1, batched=False, progress=QUIET, quiet=True).rows
    assert without_wall(rows) == without_wall(here)
    assert [r["batch_size"] for r in state.read_rows(tmp_path / "ray.csv")] == [4, 16]


def test_ray_nodes_need_no_path_to_the_data(local_ray, tmp_path):
    # a scenario on a data CSV: the driver reads it and puts it in Ray's store before any task runs,
    # so the tasks still run (and give the in-process rows) after the file is gone from its path
    import numpy as np

    from bsim.sweep.engines import one_by_one, run_ray
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(128)
    data = tmp_path / "points.csv"
    data.write_text("a,b,c,y\n" + "".join(",".join(repr(float(v)) for v in (*x, t)) + "\n" for x, t in zip(X, y)))
    scenario = tmp_path / "data.toml"
    scenario.write_text(SMALL.replace('kind = "linreg"', 'kind = "linreg"\ndata = "points.csv"')
                        .replace("n_test = 64\n", "").replace("dim = 4\n", ""))
    spec = spec_of(scenario, batch_sizes=(4, 16), seeds=(0,))
    here = run_sweep(spec, tmp_path / "here.csv", workers=1, batched=False, progress=QUIET, quiet=True).rows
    engine = run_ray(spec, [(t,) for t in spec.tasks()], None, functools.partial(one_by_one, run_task))
    data.unlink()
    there = [res.row for res in engine]
    # a task's own columns: without the identity and the time to target (both filled in by the driver)
    cols = state.TASK_COLUMNS + state.RESULT_COLUMNS + ("train_acc", "test_acc")
    here = [{k: r[k] for k in cols} for r in here]
    there = [{k: r[k] for k in cols} for r in there]
    assert without_wall(there) == without_wall(here) and len(there) == 2
