"""A run's schedule: what ``[schedule]`` changes, and when, as setting actions between steps.

- ``batch_size = { every_epochs = E, factor = a, max = M }``: at epochs E, 2E, 3E, ... (the first step
  with samples >= k E N) the batch size in force is multiplied by a (rounded, at least 1, at most M
  and N). Under ``lr_scaling`` the lr follows as for any change of B.
- ``lr = { every_epochs = E, factor = a, min, max }``: the lr in force times a at the same kind of
  boundary, kept within [min, max]. ``warmup_epochs = W, warmup_from = f``: over the first W epochs
  the lr rises linearly with the samples seen, lr(e) = lr0 (f + (1 - f) e / W) (Goyal et al. 2017),
  then stays at lr0 (the scenario's lr, times the decays due by then).
- ``batch_size = "adaptive"``: ``bsim.schedule.adaptive`` (the norm or inner-product test).

Boundaries are counted in samples, so a run, a race lane and a replay change at the same step; a
reset starts the count again (the settings in force stay). The changes are ``SetBatchSize`` and
``SetLR`` actions the simulation applies like any other. A recording keeps ``[schedule]``, so a
replay makes the same changes; the adaptive growths are also written as timeline events, and a
replay of a recording follows those instead of testing again (its statistic is still measured).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

from bsim.actions import SetBatchSize, SetLR
from bsim.errors import BsimInputError
from bsim.schedule.adaptive import AdaptiveBatch
from bsim.schedule.schema import ADAPTIVE


class Boundaries:
    """Counts the boundaries k E N (k = 1, 2, ...) that the samples seen have passed; ``passed`` returns
    how many are new since the last call (a reset, samples going down, starts the count again)."""

    def __init__(self, every_epochs: float, n_train: int, samples: int = 0):
        self.every = Fraction(repr(float(every_epochs)))     # 0.1 is 1/10 exactly: no rounding at a boundary
        self.n = n_train
        self.done = self.count(samples)
        self.samples = samples

    def count(self, samples: int) -> int:
        return math.floor(Fraction(samples) / (self.every * self.n))

    def passed(self, samples: int) -> int:
        k = self.count(samples)
        new = k - self.done if samples >= self.samples else 0
        self.done, self.samples = k, samples
        return max(new, 0)

    def next_epoch(self) -> float:
        """The epoch of the next boundary."""
        return float((self.done + 1) * self.every)


class Schedule:
    """Owns the boundaries, the warm-up's target lr and the adaptive test; reads the simulation's counters
    and settings, never sets them (``due`` returns the actions for the simulation to apply)."""

    def __init__(self, spec: dict, sim, follow_recording: bool = False):
        self.spec = spec
        n, samples = sim.n_train, sim.sampler.samples
        bs, lr = spec.get("batch_size"), spec.get("lr", {})
        self.batch = bs if isinstance(bs, dict) and "every_epochs" in bs else None
        self.batch_marks = Boundaries(bs["every_epochs"], n, samples) if self.batch else None
        self.batch_max = min(int(bs.get("max", n)), n) if self.batch else n
        self.lr = lr if "every_epochs" in lr else None
        self.lr_marks = Boundaries(lr["every_epochs"], n, samples) if self.lr else None
        self.warmup = (float(lr["warmup_epochs"]), float(lr.get("warmup_from", 0.1))) if "warmup_epochs" in lr else None
        self.peak_lr = sim.lr                 # the lr the warm-up rises to (decays during it lower it)
        self.adaptive = AdaptiveBatch(spec.get("adaptive", {}), n) if bs == ADAPTIVE else None
        self.follow = follow_recording and self.adaptive is not None
        self.warming = self.warmup is not None      # until the first step past the warm-up
        self.n = n

    # ---------------------------------------------------------------- steps
    def due(self, sim) -> Iterator[tuple[object, bool, bool]]:
        """(action, say it, record it) for each change due before the next step, in the order to apply them.

        A generator: the simulation applies each action before the next is made, so that an lr change
        starts from the lr a batch-size change left (``lr_scaling``)."""
        samples = sim.sampler.samples
        if self.batch_marks is not None and (k := self.batch_marks.passed(samples)):
            b = sim.batch_size
            for _ in range(k):
                b = min(self.batch_max, max(1, round(b * self.batch["factor"])))
            if b != sim.batch_size:
                yield (SetBatchSize(b), True, False)
        if self.adaptive is not None and not self.follow:
            grown = self.adaptive.grown_to(sim.batch_size)
            if grown is not None:
                yield (SetBatchSize(grown), True, True)
        elif self.adaptive is not None:
            self.adaptive.grown_to(sim.batch_size)       # the statistic, read as live; the growths are recorded
        lr = None
        if self.lr_marks is not None and (k := self.lr_marks.passed(samples)):
            factor = self.lr["factor"] ** k
            self.peak_lr = self._bounded(self.peak_lr * factor)
            lr = self._bounded(sim.lr * factor)
        if self.warmup is not None and self.warming:
            epochs, start = self.warmup
            if samples < epochs * self.n:     # lr rises with the samples seen: set before every step, said once
                lr = self.peak_lr * (start + (1 - start) * samples / (epochs * self.n))
                if lr != sim.lr:
                    yield (SetLR(lr), samples == 0, False)
                return
            self.warming, lr = False, self.peak_lr
        if lr is not None and lr != sim.lr:
            yield (SetLR(lr), True, False)

    def _bounded(self, lr: float) -> float:
        lo, hi = self.lr.get("min", 0.0), self.lr.get("max", math.inf)
        return min(hi, max(lo, lr))

    def observe(self, sim) -> None:
        """After each step: the adaptive test takes in the step's batch."""
        if self.adaptive is not None:
            self.adaptive.observe(sim)

    # ---------------------------------------------------------------- the screen
    @property
    def batch_test(self) -> float | None:
        return self.adaptive.value if self.adaptive is not None else None

    def next_change(self, sim) -> str:
        """What changes next, and when: 'B 16 -> 32 at epoch 10', 'lr x0.5 at epoch 10', 'warm-up to epoch 1'."""
        parts = []
        if self.batch is not None:
            b = sim.batch_size
            nb = min(self.batch_max, max(1, round(b * self.batch["factor"])))
            parts.append(f"B {b}→{nb} at epoch {self.batch_marks.next_epoch():g}" if nb != b else f"B at its max {b}")
        if self.adaptive is not None:
            a = self.adaptive
            nb = min(a.max, max(sim.batch_size + 1, math.ceil(sim.batch_size * a.factor)))
            parts.append(f"B {sim.batch_size}→{nb} when test > 1" if sim.batch_size < a.max
                         else f"B at its max {sim.batch_size}")
        if self.warmup is not None and sim.sampler.samples / self.n < self.warmup[0]:
            parts.append(f"warm-up to lr {self.peak_lr:.4g} at epoch {self.warmup[0]:g}")
        elif self.lr is not None:
            parts.append(f"lr ×{self.lr['factor']:g} at epoch {self.lr_marks.next_epoch():g}")
        return "; ".join(parts)


# ---------------------------------------------------------------- checks

def _where(sc, table: str, key: str, sub: str | None = None) -> str:
    """``file:line: table.key.sub`` in the scenario's file (without the line when it is not found)."""
    name = f"{table}.{key}" + (f".{sub}" if sub else "")
    at = (sc.where(sub, f"{table}.{key}") if sub else None) or sc.where(key, table)
    return f"{at}: {name}" if at else f"{sc.path or 'scenario'}: {name}"


def check_schedule(sc, spec: dict | None = None, n_train: int | None = None, table: str = "schedule") -> None:
    """What [schedule] (or a lane's ``table``) must agree with in the rest of the scenario: the starting B."""
    spec = sc.schedule if spec is None else spec
    if not spec:
        return
    start = sc.optimizer.batch_size if n_train is None else min(sc.optimizer.batch_size, n_train)
    bs = spec.get("batch_size")
    if isinstance(bs, dict) and "max" in bs and bs["max"] < start:
        raise BsimInputError(f"{_where(sc, table, 'batch_size', 'max')}: got {bs['max']}, expected at least the starting "
                             f"batch size {start} (a schedule grows B from there)")
    if bs == ADAPTIVE:
        opts = spec.get("adaptive", {})
        if start < 2:
            raise BsimInputError(f"{_where(sc, table, 'batch_size')}: \"adaptive\" from batch size {start}; expected a "
                                 f"starting batch size >= 2 (the test estimates the noise from the batch)")
        if "max" in opts and opts["max"] < start:
            raise BsimInputError(f"{_where(sc, table, 'adaptive', 'max')}: got {opts['max']}, expected at least the "
                                 f"starting batch size {start}")
    lr = spec.get("lr", {})
    if "min" in lr and "max" in lr and lr["min"] > lr["max"]:
        raise BsimInputError(f"{_where(sc, table, 'lr', 'min')}: got {lr['min']!r} above max {lr['max']!r}; expected min <= max")


def run_samples(sc, steps: int, n_train: int, spec: dict | None = None) -> int:
    """About how many samples ``steps`` steps see under the schedule's batch sizes (short batches ignored)."""
    spec = sc.schedule if spec is None else spec
    b = min(sc.optimizer.batch_size, n_train)
    bs = (spec or {}).get("batch_size")
    if not isinstance(bs, dict) or "every_epochs" not in bs:
        return steps * b
    marks, cap = Boundaries(bs["every_epochs"], n_train), min(int(bs.get("max", n_train)), n_train)
    samples, left = 0, steps
    while left > 0:
        boundary = math.ceil((marks.done + 1) * marks.every * n_train)
        to_next = max(1, math.ceil((boundary - samples) / b))
        take = min(left, to_next)
        samples, left = samples + take * b, left - take
        if take == to_next:
            marks.passed(samples)
            b = min(cap, max(1, round(b * bs["factor"])))
    return samples


def check_run_length(sc, n_train: int, steps: int | None = None, samples: int | None = None,
                     spec: dict | None = None, table: str = "schedule") -> None:
    """A warm-up longer than the run (``steps`` steps, or ``samples`` samples) is refused."""
    spec = sc.schedule if spec is None else spec
    lr = (spec or {}).get("lr", {})
    if "warmup_epochs" not in lr:
        return
    seen = samples if samples is not None else run_samples(sc, steps, n_train, spec)
    if lr["warmup_epochs"] * n_train > seen:
        what = f"{steps:,} steps" if samples is None else f"{samples:,} samples"
        raise BsimInputError(f"{_where(sc, table, 'lr', 'warmup_epochs')}: got {lr['warmup_epochs']:g} epochs, longer than "
                             f"the run ({what}, about {seen / n_train:.3g} epochs); expected a warm-up shorter "
                             f"than the run")


def lane_schedule(sc, name: str) -> dict:
    """The named lane's schedule (``[schedule.lane.NAME]``); BsimInputError when the scenario has none."""
    lanes = (sc.schedule or {}).get("lane", {})
    if name not in lanes:
        have = ", ".join(lanes) or "none: add [schedule.lane.NAME] tables"
        raise BsimInputError(f"--lanes: {name!r} is not a schedule of the scenario; expected one of {have}")
    return lanes[name]
