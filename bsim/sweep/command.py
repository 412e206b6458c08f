"""`bsim sweep`: run a batch-size sweep (or show a saved one) from the command line.

Exit codes: 0 done, 1 the engine gave up (a worker that keeps dying), 2 bad
input (one line), 130 interrupted. The finished tasks are saved in every case;
the same command resumes.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from bsim.cliargs import int_at_least
from bsim.errors import BsimInputError
from bsim.sweep.defaults import parse_batch_sizes, parse_lr_grid, parse_target
from bsim.sweep.spec import LR_RULES, TARGET_ON, SweepSpec, Task

DEFAULT_MAX_STEPS = 20_000
MAX_SEEDS = 1000          # --seeds (and [sweep] seeds): a bound that keeps the task list small in memory


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="a bundled name (see `bsim scenarios`, sweep-*) or a TOML file")
    p.add_argument("--batch-sizes", metavar="LIST", help="e.g. 1,2,4,...,1024 (a progression) or 8,32,128")
    p.add_argument("--target", metavar="LOSS", help="train until the loss is at most this; opt+EPS: EPS above the "
                   "loss at theta* of each seed (linear problems); with --on train_acc|test_acc, the accuracy to "
                   "reach (at least this fraction classified right, in (0, 1])")
    p.add_argument("--on", choices=TARGET_ON, help="which loss (or accuracy: classifiers) meets the target "
                   "(default train)")
    p.add_argument("--seeds", type=int_at_least(1, f"an integer in 1..{MAX_SEEDS}", MAX_SEEDS), metavar="K",
                   help=f"seeds scenario seed .. seed+K-1, each its own data, start and sampling (default 1, at most {MAX_SEEDS})")
    p.add_argument("--seed", type=int_at_least(0, "an integer >= 0"), metavar="S", help="the first seed (default: the scenario's)")
    p.add_argument("--lr-rule", choices=LR_RULES, help="how lr follows B (default none; tuned: a grid per B)")
    p.add_argument("--lr-grid", metavar="LIST", help="the lrs tuned tries (default: the scenario lr x 2^k, k=-3..3)")
    p.add_argument("--max-steps", type=int_at_least(1, "an integer >= 1"), metavar="N",
                   help=f"give up on a task after N steps (default {DEFAULT_MAX_STEPS})")
    p.add_argument("--out", metavar="PATH.csv", help="the sweep's CSV: its state (a rerun resumes it)")
    p.add_argument("--workers", type=int_at_least(1, "an integer >= 1"), metavar="W",
                   help="local processes (default: the cores this process may run on, or 1 for linear problems, "
                   "whose tasks of one batch size run as one batched run; 1 runs in this process)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the tasks on Ray: a local one, or the cluster at ADDRESS (needs bsim[ray])")
    p.add_argument("--show", metavar="PATH.csv", help="show a saved sweep instead of running one")
    p.add_argument("--app", action="store_true", help="with --show: open the sweep screen of the app")
    p.add_argument("--no-plots", action="store_true", help="print the table and the fit, not the plots")
    p.add_argument("--no-calibration", action="store_true",
                   help="skip measuring this machine's seconds per step at each B (the time-to-target columns "
                   "stay empty: a CSV that does not depend on the machine)")


def _check_ray_address(addr: str) -> None:
    if addr and addr != "auto" and ":" not in addr:
        raise BsimInputError(f"--ray {addr!r}: expected a Ray address host:port, ray://host:port or auto "
                             f"(write --ray=ADDRESS, or put --ray after the scenario)")


def build_spec(args) -> SweepSpec:
    """The sweep asked for: flags over the scenario's [sweep] table; checked before any task runs."""
    from bsim.scenario import find_scenario
    sc = find_scenario(args.scenario)   # a bad [sweep] table is an error naming its file, line and key
    d = sc.sweep or {}
    where = f" (or {{}} = ... in the [sweep] table of {sc.path.name if sc.path else 'the scenario'})"
    batch_sizes = parse_batch_sizes(args.batch_sizes) if args.batch_sizes else d.get("batch_sizes")
    if batch_sizes is None:
        raise BsimInputError("--batch-sizes: missing; expected a list such as 1,2,4,...,1024" + where.format("batch_sizes"))
    target = args.target if args.target is not None else d.get("target")
    if target is not None:
        target, excess = parse_target(target, accuracy=str(args.on or d.get("on", "")).endswith("_acc"))
    else:
        raise BsimInputError("--target: missing; expected the loss to train to, e.g. --target 0.14" + where.format("target"))
    lr_rule = args.lr_rule or d.get("lr_rule", "none")
    grid = parse_lr_grid(args.lr_grid) if args.lr_grid else (d.get("lr_grid", ()) if lr_rule == "tuned" else ())
    if args.lr_grid and lr_rule != "tuned":
        raise BsimInputError(f"--lr-grid: only tuned tries a grid; expected --lr-rule tuned (not {lr_rule})")
    seeds = args.seeds or d.get("seeds", 1)
    if seeds > MAX_SEEDS:
        raise BsimInputError(f"{sc.where('seeds', 'sweep') or 'the [sweep] table'}: sweep.seeds: got {seeds}, "
                             f"expected an integer in 1..{MAX_SEEDS}")
    name = Path(args.scenario).stem if args.scenario.endswith(".toml") else args.scenario
    spec = SweepSpec(scenario=sc, scenario_name=name, batch_sizes=tuple(sorted(set(batch_sizes))),
                     target=target, excess=excess, on=args.on or d.get("on", "train"),
                     seeds=tuple((sc.seed if args.seed is None else args.seed) + k for k in range(seeds)), lr_rule=lr_rule, lr_grid=tuple(sorted(grid)),
                     max_steps=args.max_steps or d.get("max_steps", DEFAULT_MAX_STEPS))
    if sc.timeline:
        spec.warnings.append(f"the scenario's timeline ({len(sc.timeline)} events) is ignored: a sweep task "
                             f"keeps one batch size and lr")
    _check_target_kind(spec)
    _check_problem(spec)
    return spec


def _check_target_kind(spec: SweepSpec) -> None:
    """An accuracy target is a fraction in (0, 1], never opt+EPS; a loss target is no accuracy's."""
    if spec.on == "escape" and (spec.excess or not 0 < spec.target < 1):
        raise BsimInputError(f"--target {spec.target_text}: --on escape takes the fraction of the chains to escape; "
                             f"expected a fraction in (0, 1) such as 0.5")
    if not spec.on_accuracy:
        return
    if spec.excess:
        raise BsimInputError(f"--target {spec.target_text}: --on {spec.on} takes an accuracy to reach, not opt+EPS; "
                             f"expected a fraction in (0, 1] such as 0.9")
    if not 0 < spec.target <= 1:
        raise BsimInputError(f"--target {spec.target:g}: --on {spec.on} takes an accuracy to reach; expected a "
                             f"fraction in (0, 1] such as 0.9")


def _check_problem(spec: SweepSpec) -> None:
    """Batch sizes within N, a test set for --on test, a target below the start and above the optimum."""
    import torch

    from bsim.simulation import Simulation
    for seed in spec.seeds:
        sim = Simulation(spec.task_scenario(Task(spec.batch_sizes[0], seed, spec.base_lr)), stats=False)
        p = sim.problem
        big = [b for b in spec.batch_sizes if b > p.n_train]
        if big:
            raise BsimInputError(f"--batch-sizes: {big[0]} is above N = {p.n_train} (the training set); "
                                 f"expected batch sizes up to {p.n_train}")
        if spec.on == "escape":
            if not getattr(p, "landscape", False):
                raise BsimInputError(f"--on escape: the {p.kind} problem has no basins; expected a landscape "
                                     f"scenario (kind wells, wells2d or nonuniform), e.g. bsim sweep escape")
            continue
        if spec.on_accuracy:
            _check_accuracy_start(spec, p, sim.theta, seed)
            continue
        with torch.no_grad():
            start = p.train_loss(sim.theta) if spec.on == "train" else p.test_loss(sim.theta)
        if start is None:
            raise BsimInputError("--on test: the scenario has no test set; expected [problem] n_test > 0 or test_data")
        if spec.excess and p.theta_star is None:
            raise BsimInputError(f"--target {spec.target_text}: the {p.kind} problem has no known optimum; "
                                 f"expected an absolute loss such as --target 0.05")
        target = spec.target_for(p)
        if float(start) <= target:
            raise BsimInputError(f"--target {spec.target_text}: the {spec.on} loss is already {float(start):.4g} at "
                                 f"step 0 (seed {seed}); expected a target below it")
        if spec.on == "train" and p.theta_star is not None and not spec.excess:
            with torch.no_grad():
                best = float(p.train_loss(p.theta_star))
            if target <= best:
                raise BsimInputError(f"--target {spec.target_text}: no batch size can reach it: the lowest train loss "
                                     f"(at theta*, seed {seed}) is {best:.6g}; expected a target above it, "
                                     f"or opt+EPS")


def _check_accuracy_start(spec: SweepSpec, problem, theta, seed: int) -> None:
    """A classifier, a test set for test_acc, and a target above the accuracy at step 0."""
    import torch
    with torch.no_grad():
        if problem.train_accuracy(theta) is None:
            raise BsimInputError(f"--on {spec.on}: the {problem.kind} problem is not a classifier (no accuracy); "
                                 f"expected --on train or test, or a logreg scenario")
        start = problem.train_accuracy(theta) if spec.on == "train_acc" else problem.test_accuracy(theta)
    if start is None:
        raise BsimInputError("--on test_acc: the scenario has no test set; expected [problem] n_test > 0 or test_data")
    if float(start) >= spec.target:
        raise BsimInputError(f"--target {spec.target_text}: the {spec.on} is already {float(start):.4g} at step 0 "
                             f"(seed {seed}); expected a target above it")


def cmd_sweep(args) -> int | OpenSweepScreen:
    """Run (or show) a sweep: an exit code, or the request to open the app's sweep screen."""
    from bsim.sweep.engines import SweepFailed, SweepInterrupted, run_sweep
    if args.show:
        if args.scenario:
            raise BsimInputError("bsim sweep: give a SCENARIO to run a sweep, or --show PATH.csv, not both")
        return show(args.show, app=args.app, plots=not args.no_plots)
    if args.app:
        raise BsimInputError("--app: expected --show PATH.csv (the screen shows a saved sweep)")
    if not args.scenario:
        raise BsimInputError("bsim sweep: missing SCENARIO; expected a bundled name (e.g. sweep-linreg) or a TOML "
                             "file, or --show PATH.csv")
    if not args.out:
        raise BsimInputError("--out: missing; expected the CSV that keeps the sweep's state, e.g. --out sweep.csv")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise BsimInputError(f"--out {args.out}: no such folder {out.parent}; expected a path in an existing folder")
    if args.ray is not None:
        if args.workers:
            raise BsimInputError("--workers: Ray decides where tasks run; expected --workers or --ray, not both")
        _check_ray_address(args.ray)
    import torch
    torch.set_num_threads(1)
    spec = build_spec(args)
    for w in spec.warnings:
        print(f"bsim: warning: {w}", file=sys.stderr)
    def terminated(signum, frame):     # a scheduler's SIGTERM ends the sweep as Ctrl-C does
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, terminated)
    timing = False
    try:
        run_sweep(spec, out, workers=args.workers, use_ray=args.ray is not None, ray_address=args.ray or None)
        timing = True
        _calibrate(spec, out, skip=args.no_calibration)
    except SweepInterrupted as exc:
        print(f"bsim: {exc}; they are saved in {out}: run the same command to resume", file=sys.stderr)
        return 130
    except SweepFailed as exc:
        print(f"bsim: {exc}; the finished tasks are saved in {out}: run the same command to resume",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if not timing:
            raise
        print(f"bsim: interrupted while timing steps; every task is saved in {out}, without its time to "
              f"target: run the same command to time them", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return show(out, plots=not args.no_plots)


def _calibrate(spec: SweepSpec, out: Path, skip: bool) -> None:
    """Time a step at every batch size in the CSV on this machine (after the tasks, so none competes
    with them) and write the time columns; empty ones with ``skip``."""
    from bsim.sweep import state
    from bsim.sweep.calibrate import ROUNDS, STEPS_PER_ROUND, calibrate, stamp
    rows = state.read_rows(out)
    sizes = sorted({r["batch_size"] for r in rows})
    if skip:
        cal = None
    else:
        print(f"bsim: calibrating this machine's seconds per step at {len(sizes)} batch sizes "
              f"({ROUNDS} x {STEPS_PER_ROUND} steps each)", file=sys.stderr)
        cal = calibrate(spec, sizes)
    state.write_rows(out, stamp(rows, cal))


@dataclass(frozen=True)
class OpenSweepScreen:
    """What ``--show PATH --app`` asks of the CLI: open the app's sweep screen on ``path`` (the sweep never
    imports the app; bsim.cli does). The file has been read as a sweep already."""
    path: str


def show(path, app: bool = False, plots: bool = True) -> int | OpenSweepScreen:
    """Print a saved sweep's table, fit and plots (or ask the CLI to open its screen in the app)."""
    from bsim.sweep import load_sweep
    summary, curves = load_sweep(path)    # a file that is not a sweep: one line, before any screen opens
    if app:
        return OpenSweepScreen(str(path))
    escape = _escape_report(path)
    if not plots:
        print("\n".join(summary.lines()) + escape)
        return 0
    from bsim.sweep.plots import render
    size = shutil.get_terminal_size((120, 40))
    print(render(summary, curves, width=max(80, size.columns), height=max(16, (size.lines - 10) // 2),
                 color=sys.stdout.isatty()) + escape)
    return 0


def _escape_report(path) -> str:
    """An escape sweep's plot of log(steps to escape) against 1/(lr c_B) with Kramers' line ("" otherwise)."""
    from bsim.sweep import state
    from bsim.sweep.escape import report
    rows = state.read_rows(path)
    if not rows or rows[0].get("on") != "escape":
        return ""
    return "\n\n" + report(rows, width=min(100, max(40, shutil.get_terminal_size((120, 40)).columns - 20)))
