"""A lane of a race: one batch size trained alone, exactly as ``bsim run`` trains it, with its own clock.

A lane at batch size B is the Simulation that ``bsim run SCENARIO --batch-size B --lr LR [--chains K]``
builds (the scenario with those overrides, ``bsim.scenario.apply_overrides``), without the scenario's
timeline: a race keeps each lane's batch size, so the timeline's events are not applied (the command
says so in one warning line). A lane therefore equals ``bsim run`` of the scenario without its timeline.

The lane's lr: lr(B) = lr0 * factor(B / B0) (``bsim.lrscaling.scaled_lr``), with lr0 and B0 the
scenario's lr and batch size and the rule the scenario's ``lr_scaling`` (or ``--lr-rule``). Note that
``bsim run --batch-size B`` itself keeps lr0 (the flag sets the base batch size B0 = B, so its lr scaling
acts only on later changes of B): a lane whose rule gives lr(B) != lr0 equals
``bsim run SCENARIO --batch-size B --lr lr(B)``. Under the rule none (the default scenarios), lr(B) = lr0.

Its clock: ``seconds`` sums time.perf_counter() around each of its steps (the race's own measure of
compute, not Simulation's frame-to-frame rate; on a GPU after a synchronize, so that the step's work is
counted, not its launch); samples/s = samples / seconds.
"""

from __future__ import annotations

import time

from bsim.lrscaling import scaled_lr
from bsim.race.frame import LaneFrame, LaneName
from bsim.scenario import Scenario, apply_overrides


def _cuda_sync(device) -> None:
    import torch
    torch.cuda.synchronize(device)


def training_size(scenario: Scenario) -> int:
    """N, the training set's size: the scenario's n_train, or the rows of its data file."""
    p = scenario.problem
    if p.data and p.kind != "lstm":
        from bsim.problems.csvdata import read_xy
        from bsim.problems.dataset import test_rows
        _, y = read_xy(scenario.resolve(p.data), binary=p.kind == "logreg",
                       classes=p.classes if p.kind == "softmax" else None)
        return len(y) - int(test_rows(len(y), p.test_fraction, p.split_seed).sum()) if p.test_fraction else len(y)
    return scenario.problem.n_train


def lane_lr(scenario: Scenario, batch_size: int, rule: str, n_train: int | None = None) -> float:
    """lr0 * factor(B / B0) under ``rule`` (none, linear, sqrt); B0 is the scenario's batch size (<= N)."""
    opt = scenario.optimizer
    base = opt.batch_size if n_train is None else min(opt.batch_size, n_train)
    return scaled_lr(rule, opt.lr, batch_size, base)


def lane_scenario(scenario: Scenario, batch_size: int, lr: float, chains: int | None = None,
                  schedule: dict | None = None) -> Scenario:
    """The scenario of ``bsim run --batch-size B --lr LR [--chains K]``, without its timeline; a named lane's
    ``schedule`` (``[schedule.lane.NAME]``) in place of the scenario's own ``[schedule]``."""
    sc = apply_overrides(scenario, batch_size=batch_size, lr=lr, chains=chains)
    sc.timeline = []
    if schedule is not None:
        sc.schedule = dict(schedule)
    sc.recording = None
    sc.warnings = []
    return sc


class Lane(LaneName):
    """One batch size of a race: owns its Simulation (stepped only through ``step``) and its compute clock.

    ``limit``: (axis, n) with axis "steps" or "samples": the lane is ``finished`` once it has taken n steps
    or seen at least n samples (headless budgets, a replay's end); None: no end.
    ``name``: a lane that differs by schedule (``bsim race --lanes``) is known by the name of its
    ``[schedule.lane.NAME]``; the others by their batch size (``key``, ``label``). ``batch_size`` is the
    lane's starting B (a schedule may change it: its frame says the B in force).
    """

    def __init__(self, scenario: Scenario, batch_size: int, lr: float, chains: int | None = None,
                 device=None, stats: bool = True, name: str | None = None, schedule: dict | None = None):
        from bsim.simulation import Simulation
        self.batch_size = batch_size
        self.lr = lr
        self.name = name
        self.sim = Simulation(lane_scenario(scenario, batch_size, lr, chains, schedule), device=device, stats=stats)
        self.seconds = 0.0
        self.limit: tuple[str, int] | None = None
        # a GPU works asynchronously: the clock waits for the step to finish (else it times the launch only)
        self._sync = _cuda_sync if self.sim.device.type == "cuda" else None

    # ------------------------------------------------------------ state
    @property
    def steps(self) -> int:
        return self.sim.step_count

    @property
    def samples(self) -> int:
        return self.sim.sampler.samples

    @property
    def diverged(self) -> bool:
        return self.sim.diverged

    @property
    def finished(self) -> bool:
        """The lane reached its limit (never without one)."""
        if self.limit is None:
            return False
        axis, n = self.limit
        return (self.steps if axis == "steps" else self.samples) >= n

    @property
    def running(self) -> bool:
        """It may take another step: not diverged, not finished."""
        return not self.diverged and not self.finished

    def position(self, by: str) -> float:
        """Where it stands on a race axis: samples seen, steps taken, or seconds of compute."""
        if by == "samples":
            return float(self.samples)
        if by == "steps":
            return float(self.steps)
        return self.seconds

    @property
    def samples_per_sec(self) -> float | None:
        """samples / seconds of its own compute (None before its first step)."""
        return self.samples / self.seconds if self.seconds > 0 else None

    # ------------------------------------------------------------ stepping
    def step(self) -> bool:
        """One SGD step, timed; False when the lane diverged (the step is not kept)."""
        t0 = time.perf_counter()
        ok = self.sim.step()
        if self._sync is not None:
            self._sync(self.sim.device)
        self.seconds += time.perf_counter() - t0
        return ok

    def frame(self, timing: bool = True) -> LaneFrame:
        """Its LaneFrame: the Simulation's frame, with samples_per_sec the lane's own rate (None without timing)."""
        f = self.sim.frame(timing=False)
        rate = self.samples_per_sec if timing else None
        f.samples_per_sec = rate
        f.steps_per_sec = self.steps / self.seconds if timing and self.seconds > 0 else None
        return LaneFrame(batch_size=self.batch_size, lr=self.lr, frame=f, seconds=self.seconds,
                         samples_per_sec=rate, finished=self.finished, name=self.name)
