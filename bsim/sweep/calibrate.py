"""This machine's seconds per training step at each batch size, for the sweep's time to target.

t_step(B) is measured on the step a sweep's task takes (``Simulation.step``, statistics off, the
task's scenario at that B), on the sweep's device and with the torch threads the sweep runs with
(one: ``bsim sweep`` sets it): WARMUP steps untimed, then ROUNDS rounds of STEPS_PER_ROUND timed
steps, and the fastest round's mean kept. On a CPU a round is timed by the process's CPU time
(time.process_time): with one thread that is the step's wall-clock time on a core of its own, and
other processes on a shared machine do not inflate it (measured on a 2-core machine at load 4: the
wall clock scattered by 2-3x between calibrations, the CPU time of 3 rounds of 100 steps by up to
1.5x, of 10 rounds of 30 by ~20%). On a GPU, by the wall
clock, the device synchronised before and after each round.

Time to target T(B) = S(B) x t_step(B): how long training at B takes to reach the target here, the
sweep's own target checks left out. Larger batches take fewer steps but longer ones, so the fastest
B in wall-clock time depends on the hardware (Shallue et al. 2018, "the largest batch your hardware
supports" against the critical batch size).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from bsim.sweep.spec import SweepSpec, Task

WARMUP = 20
ROUNDS = 10            # many short rounds: the fastest is more often one no other process disturbed
STEPS_PER_ROUND = 30


@dataclass(frozen=True)
class Calibration:
    """The measured seconds per step of each batch size, the device they were measured on, and the
    timed steps per batch size (ROUNDS x STEPS_PER_ROUND)."""
    device: str
    steps: int
    seconds_per_step: dict[int, float]


def time_steps(make_sim: Callable, rounds: int = ROUNDS, steps: int = STEPS_PER_ROUND, warmup: int = WARMUP,
               clock: Callable[[], float] | None = None) -> float | None:
    """The fastest round's seconds per step of ``make_sim()``'s simulation; a round in which it
    diverges is not counted (a fresh simulation is made); None when no round finished. ``clock``:
    by default CPU time on a CPU, the wall clock on a GPU."""
    sim = make_sim()
    gpu = sim.device.type != "cpu"
    clock = clock or (time.perf_counter if gpu else time.process_time)
    sync = {"cuda": torch.cuda.synchronize, "mps": getattr(torch, "mps", torch.cuda).synchronize}.get(
        sim.device.type, lambda: None)
    for _ in range(warmup):
        if not sim.step():
            sim = make_sim()
    best = math.inf
    for _ in range(rounds):
        sync()
        t0 = clock()
        ok = all(sim.step() for _ in range(steps))
        sync()
        elapsed = clock() - t0
        if ok:
            best = min(best, elapsed / steps)
        else:
            sim = make_sim()
    return best if math.isfinite(best) else None


def calibrate(spec: SweepSpec, batch_sizes: Iterable[int], rounds: int = ROUNDS,
              steps: int = STEPS_PER_ROUND) -> Calibration:
    """Seconds per step at each batch size: the spec's first seed and smallest lr at that B (the step's
    cost does not depend on lr; the smallest is the least likely to diverge)."""
    from bsim.devices import resolve_device
    from bsim.simulation import Simulation
    out = {}
    for b in sorted(set(batch_sizes)):
        task = Task(b, spec.seeds[0], min(spec.lrs_for(b)))

        def make_sim(task=task):
            return Simulation(spec.task_scenario(task), stats=False)

        t = time_steps(make_sim, rounds, steps)
        if t is not None:
            out[b] = t
    return Calibration(str(resolve_device(spec.scenario.device)), rounds * steps, out)


def stamp(rows: list[dict], calibration: Calibration | None) -> list[dict]:
    """The rows with their time columns: seconds_per_step at the row's B, time_to_target = steps x that
    (empty when the task did not reach the target), the device and steps of the calibration; all
    empty without a calibration (--no-calibration)."""
    out = []
    for r in rows:
        sps = calibration.seconds_per_step.get(r["batch_size"]) if calibration else None
        out.append({**r, "seconds_per_step": sps,
                    "time_to_target": r["steps"] * sps if sps is not None and r["steps"] is not None else None,
                    "calibration_device": calibration.device if sps is not None else None,
                    "calibration_steps": calibration.steps if sps is not None else None})
    return out
