"""Run a sweep's tasks in-process, on a local process pool, or on a Ray cluster.

Every engine yields TaskResults as tasks finish; ``run_sweep`` saves each one
(its curve, then the CSV rewritten atomically) before the next, so the CSV is
always the state: a rerun of the same command skips the tasks in it.
- inline (workers = 1): in this process, in order.
- pool (workers >= 2, the default: one per core this process may use): a ProcessPoolExecutor of
  spawned workers, one torch and one BLAS thread each. If a worker process dies, the pool
  is rebuilt and the unfinished tasks resubmitted (up to MAX_RETRIES times).
- ray: one remote task per sweep task (num_cpus=1, max_retries=MAX_RETRIES,
  so a task whose worker is lost runs again); ``ray.init()`` with no address
  starts a local Ray (or joins RAY_ADDRESS), an address joins that cluster.
  Every way of joining ships this bsim (runtime_env), and the data files are
  read here and sent through Ray's object store: nodes need no shared path.
Tasks are deterministic from their seed, so every engine writes the same rows
(but wall_s).

What an engine runs is a unit: one task, or (linear problems in float64, bsim.sweep.batched) all the
tasks of one batch size as one batched run, the lr grid x the seeds stepped together. Batched units
run in this process unless ``workers`` asks for a pool (the whole bundled least-squares sweep takes
less time than starting a pool's workers); the pool and Ray spread the batch sizes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator

import multiprocessing as mp

from bsim.errors import BsimInputError
from bsim.progress import Progress
from bsim.sweep import state
from bsim.sweep.batched import batchable, groups_of, run_batch
from bsim.sweep.spec import SweepSpec, Task
from bsim.sweep.task import TaskResult, run_task
from bsim.sweep.worker import init_worker

MAX_RETRIES = 3
TaskFn = Callable[[SweepSpec, Task], TaskResult]
Unit = tuple[Task, ...]
UnitFn = Callable[[SweepSpec, Unit], list[TaskResult]]


def one_by_one(task_fn: TaskFn, spec: SweepSpec, unit: Unit) -> list[TaskResult]:
    """A unit run one task at a time with ``task_fn`` (use functools.partial(one_by_one, task_fn))."""
    return [task_fn(spec, t) for t in unit]


class SweepInterrupted(Exception):
    def __init__(self, done: int, total: int):
        super().__init__(f"interrupted: {done} of {total} tasks done")
        self.done, self.total = done, total


class SweepFailed(Exception):
    """The engine gave up (a task that keeps killing its worker, a lost cluster): the finished rows are saved."""

    def __init__(self, done: int, total: int, cause: BaseException):
        what = str(cause).splitlines()[0] if str(cause) else ""
        super().__init__(f"the sweep stopped after {done} of {total} tasks: {type(cause).__name__}"
                         + (f": {what}" if what else ""))
        self.done, self.total = done, total


@dataclass
class Outcome:
    rows: list[dict]
    ran: int          # tasks run by this call
    skipped: int      # tasks found done in the CSV


# ------------------------------------------------------------------ engines

def local_cores() -> int:
    """The cores this process may run on: its CPU affinity (what cgroups, taskset and Slurm allow), not
    every core of the machine (os.cpu_count()); os.cpu_count() where there is no affinity (macOS)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def run_inline(spec: SweepSpec, units: list[Unit], unit_fn: UnitFn) -> Iterator[TaskResult]:
    for u in units:
        yield from unit_fn(spec, u)


def _kill(executor: ProcessPoolExecutor, started_before: set) -> None:
    """End the pool's workers now (a task may run for minutes), then the pool.

    The workers are this process's multiprocessing children that the pool started
    (``mp.active_children()``, public) rather than the executor's private ``_processes``."""
    for p in set(mp.active_children()) - started_before:
        p.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


#: one BLAS/OpenMP thread per worker: W workers with a multi-threaded (spinning) OpenBLAS
#: each oversubscribe the cores (measured: 2 workers on 2 cores ran 4x slower)
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _child_env(env: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the processes spawned meanwhile (this process keeps its libraries)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v for k, v in env.items() if old[k] is None})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)


def run_pool(spec: SweepSpec, units: list[Unit], workers: int, unit_fn: UnitFn) -> Iterator[TaskResult]:
    """A process pool; a dead worker breaks the pool, which is rebuilt for the unfinished units."""
    with _child_env(SINGLE_THREAD_ENV):
        yield from _run_pool(spec, units, workers, unit_fn)


def _run_pool(spec: SweepSpec, units: list[Unit], workers: int, unit_fn: UnitFn) -> Iterator[TaskResult]:
    left = list(units)
    for attempt in range(MAX_RETRIES + 1):
        before = set(mp.active_children())
        ex = ProcessPoolExecutor(max_workers=max(1, min(workers, len(left))), mp_context=mp.get_context("spawn"),
                                 initializer=init_worker, initargs=(os.getpid(),))
        futures = {ex.submit(unit_fn, spec, u): u for u in left}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    results = f.result()
                    left.remove(futures[f])
                    yield from results
            ex.shutdown()
            return
        except BrokenProcessPool:
            _kill(ex, before)
            if attempt == MAX_RETRIES:
                raise
            print(f"bsim: a pool worker died; retrying {len(left)} unfinished tasks", file=sys.stderr)
        except BaseException:
            _kill(ex, before)
            raise


DATA_KEYS = ("data", "test_data")


def data_files(spec: SweepSpec) -> dict[str, bytes]:
    """The scenario's data files (``data``, ``test_data``), read on the driver: key -> the file's bytes."""
    out = {}
    for key in DATA_KEYS:
        rel = getattr(spec.scenario.problem, key)
        if rel:
            path = spec.scenario.resolve(rel)
            try:
                out[key] = path.read_bytes()
            except OSError as exc:
                raise BsimInputError(f"{path}: cannot read the data file ({exc.strerror})") from None
    return out


def with_local_data(spec: SweepSpec, files: dict[str, bytes]) -> SweepSpec:
    """The spec with its data files written on this node (a temporary folder named by their hash, written
    once per node), so that a Ray node needs no path shared with the driver."""
    if not files:
        return spec
    import copy
    import hashlib
    import tempfile
    digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"bsim-sweep-data-{digest}"
    folder.mkdir(exist_ok=True)
    spec = copy.copy(spec)
    spec.scenario = spec.scenario.copy()
    for key, content in files.items():
        path = folder / f"{key}.csv"
        if not path.exists() or path.read_bytes() != content:
            tmp = folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(content)
            os.replace(tmp, path)
        setattr(spec.scenario.problem, key, str(path))
    return spec


def _ray_call(unit_fn: UnitFn, spec: SweepSpec, unit: Unit, files: dict[str, bytes]) -> list[TaskResult]:
    import torch
    torch.set_num_threads(1)
    return unit_fn(with_local_data(spec, files), unit)


def ray_runtime_env() -> dict:
    """What every worker of the sweep gets, however the driver joins Ray (a new local Ray, RAY_ADDRESS,
    auto or ADDRESS): this bsim (the driver's package, shipped) and one BLAS thread."""
    import bsim
    return {"py_modules": [os.path.dirname(bsim.__file__)], "env_vars": dict(SINGLE_THREAD_ENV)}


def run_ray(spec: SweepSpec, units: list[Unit], address: str | None, unit_fn: UnitFn) -> Iterator[TaskResult]:
    """Remote units on Ray (retried up to MAX_RETRIES times when their worker is lost).

    Ray is started or joined, and the data read and put in Ray's object store, before this returns;
    the results come from the iterator it returns.
    """
    try:
        import ray
    except ImportError:
        raise BsimInputError("--ray: Ray is not installed; expected the optional extra: pip install 'bsim[ray]'") from None
    own = not ray.is_initialized()
    if own:
        kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                      runtime_env=ray_runtime_env())
        local = not address and not os.environ.get("RAY_ADDRESS")
        try:
            try:
                # a new local Ray: the cores this process may use
                ray.init(address=address or None, **kwargs, **({"num_cpus": local_cores()} if local else {}))
            except ValueError as exc:
                if not (local and "existing cluster" in str(exc)):
                    raise
                ray.init(**kwargs)      # ray.init() found a cluster started on this machine (ray start): join it
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BsimInputError(f"--ray {address or ''}: cannot start or join Ray: {str(exc).splitlines()[0]}") from None
    try:
        files_ref = ray.put(data_files(spec))
    except BaseException:
        if own:
            ray.shutdown()
        raise
    return _ray_results(ray, spec, units, unit_fn, files_ref, own)


def _ray_results(ray, spec, units, unit_fn, files_ref, own) -> Iterator[TaskResult]:
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_ray_call)
    pending: dict = {}
    try:
        spec_ref = ray.put(spec)
        pending = {remote.remote(unit_fn, spec_ref, u, files_ref): u for u in units}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                del pending[ref]
                yield from ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if own:
            ray.shutdown()


# ------------------------------------------------------------------- driver

def check_resumable(rows: list[dict], spec: SweepSpec, out: Path) -> None:
    ident = spec.identity()
    for r in rows:
        for k, v in ident.items():
            if state.cell(r[k]) != v:
                raise BsimInputError(f"{out}: holds a sweep with {k} = {state.cell(r[k])}, not {v}; expected the same "
                                     f"scenario and flags to resume it, or another --out")


def run_sweep(spec: SweepSpec, out: str | Path, workers: int | None = None, ray_address: str | None = None,
              use_ray: bool = False, task_fn: TaskFn | None = None, progress: Progress | None = None,
              quiet: bool = False, in_process: bool | None = None, batched: bool | None = None) -> Outcome:
    """Run the tasks of ``spec`` not yet in ``out``, saving each as it finishes.

    ``batched`` (default: a linear problem in float64, and no ``task_fn``) runs each batch size's tasks as
    one batched run (bsim.sweep.batched), in this process unless ``workers`` or ``use_ray`` is given;
    otherwise one task at a time with ``task_fn`` (default run_task). ``in_process`` (default: when
    workers <= 1) runs the units here rather than in a pool.
    """
    out = Path(out)
    rows = state.read_rows(out) if out.exists() else []
    check_resumable(rows, spec, out)
    rows, dropped = state.drop_duplicates(rows)
    if dropped:
        print(f"bsim: warning: {out}: {dropped} duplicated row(s) of a task dropped (the first of each kept)",
              file=sys.stderr)
        state.write_rows(out, rows)
    done_keys = {state.row_key(r) for r in rows}
    tasks = spec.tasks()
    todo = [t for t in tasks if t.key not in done_keys]
    skipped = len(tasks) - len(todo)
    if skipped and not quiet:
        print(f"bsim: resuming {out}: {skipped} of {len(tasks)} tasks already done", file=sys.stderr)
    if batched is None:
        batched = task_fn is None and batchable(spec)
    if batched:
        units, unit_fn = groups_of(todo), run_batch
        workers = workers or 1
    else:
        units, unit_fn = [(t,) for t in todo], functools.partial(one_by_one, task_fn or run_task)
        workers = workers or local_cores()
    if use_ray:
        engine = run_ray(spec, units, ray_address, unit_fn)
    elif in_process if in_process is not None else (workers <= 1 or len(units) <= 1):
        engine = run_inline(spec, units, unit_fn)
    else:
        engine = run_pool(spec, units, workers, unit_fn)
    ident = spec.identity()
    curves = state.curves_dir(out)
    prog = progress or Progress(len(tasks), skipped, unit="tasks")
    ran = 0
    try:
        prog.update(skipped)
        for res in engine:
            state.write_curve(curves, res.task.name, res.curve)
            rows.append({**dict.fromkeys(state.COLUMNS), **res.row,
                         **{k: state.parse_cell(k, v) for k, v in ident.items()}})
            state.write_rows(out, rows)
            ran += 1
            r = res.row
            last = f"B={r['batch_size']} S={r['steps']}" if r["reached"] else \
                   f"B={r['batch_size']} {'diverged' if r['diverged'] else 'not reached'}"
            prog.update(skipped + ran, last)
    except KeyboardInterrupt:
        engine.close()
        prog.close()
        raise SweepInterrupted(skipped + ran, len(tasks)) from None
    except BsimInputError:
        prog.close()
        raise
    except Exception as exc:     # noqa: BLE001 - reported in one line; the rows so far are saved
        engine.close()
        prog.close()
        raise SweepFailed(skipped + ran, len(tasks), exc) from exc
    prog.close()
    return Outcome(rows, ran, skipped)
