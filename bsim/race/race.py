"""The race: lanes from one start, advanced in lockstep on one budget axis.

Lockstep rule: the next step goes to the running lane furthest behind on the axis (``by``: samples
seen, steps taken, or seconds of measured compute); ties go to the lane first in lane order. Each
lane's own steps do not depend on the others (its own data, generators and parameters), so the rule
only orders them: the steps run in the order of (position where the step starts, lane order), a k-way
merge. Hence, for ``by`` samples or steps:

- the order is deterministic, and a headless race's CSV is the same from run to run;
- a lane added later starts from theta_0 and takes every step until it has caught up: once it has,
  the race is where it would be had the lane been there from the start (a race's state never depends
  on when a lane was added);
- a lane that stops early (a limit, a divergence) changes nothing for the others.

A diverged lane stops (a notice says so); the others go on. By ``time`` the order follows this
machine's clock and is not reproducible (each lane's own trajectory still is).
"""

from __future__ import annotations

from bsim.errors import BsimInputError
from bsim.race.frame import AXES, MAX_LANES, RaceFrame
from bsim.race.lanes import Lane, lane_lr, lane_scenario, training_size
from bsim.race.targets import TargetTracker
from bsim.scenario import LR_SCALINGS, Scenario

#: the budgets a lane can stop at (headless --steps / --samples, a replay's recorded steps)
LIMIT_AXES = ("steps", "samples")


class RaceError(BsimInputError):
    """A race that cannot be built or changed as asked (one line; the CLI exits 2, the screen shows it)."""


def check_batch_size(value) -> int:
    """A batch size: an integer >= 1 (not a bool), else RaceError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RaceError(f"batch size {value!r}: expected an integer >= 1")
    return value


class Race:
    """Owns the lanes (their Simulations, through Lane) and the lockstep that orders their steps.

    May touch: its lanes. Nothing above it (runner, views) is known to it. ``scenario`` is the
    scenario with the command line's overrides applied (its timeline is not applied: see lanes.py).
    """

    def __init__(self, scenario: Scenario, batch_sizes, by: str = "samples", lr_rule: str | None = None,
                 chains: int | None = None, device=None, stats: bool = True, names=None):
        """``names``: lanes that differ by schedule (``[schedule.lane.NAME]``), each at its batch size of
        ``batch_sizes`` (None: lanes that differ by batch size, with the scenario's own schedule)."""
        if by not in AXES:
            raise RaceError(f"by {by!r}: expected one of {', '.join(AXES)}")
        if lr_rule is not None and lr_rule not in LR_SCALINGS:
            raise RaceError(f"lr rule {lr_rule!r}: expected one of {', '.join(LR_SCALINGS)}")
        self.scenario = scenario.copy()
        self.by = by
        self.lr_rule = lr_rule or scenario.optimizer.lr_scaling
        self.chains = scenario.chains if chains is None else chains
        self.device, self.stats = device, stats
        self.n_train = training_size(scenario)
        self.lanes: list[Lane] = []
        self.limit: tuple[str, int] | None = None    # the end every lane stops at (added lanes too)
        self.last_lane: Lane | None = None           # the lane that took the last step
        self.notices: list[str] = []
        self.reach = TargetTracker()                 # each lane's record lows, for the loss targets
        self.observers: list = []                    # called with the lane after each lane step (RaceCurves)
        sizes = [check_batch_size(b) for b in batch_sizes]
        names = list(names) if names is not None else [None] * len(sizes)
        if len(names) != len(sizes):
            raise RaceError(f"{len(names)} lane names for {len(sizes)} batch sizes; expected one each")
        if not sizes:
            raise RaceError("no batch sizes: expected at least one lane")
        if len(sizes) > MAX_LANES:
            raise RaceError(f"{len(sizes)} batch sizes: expected at most {MAX_LANES} lanes")
        clamped = [min(b, self.n_train) for b in sizes]
        check_race_memory(self.scenario, clamped)
        for i, (b, name) in enumerate(zip(sizes, names)):
            lane = self._add(b, name)
            if i == 0:   # the ensembles of every lane, now that one problem tells their size
                check_race_memory(self.scenario, clamped[1:], self.chains, lane.sim.problem)

    # ------------------------------------------------------------ lanes
    def lane(self, batch_size: int) -> Lane | None:
        """The lane of that batch size (not a named one: those are found by ``lane_keyed``)."""
        return next((lane for lane in self.lanes if lane.name is None and lane.batch_size == batch_size), None)

    def lane_keyed(self, key: int | str) -> Lane | None:
        """The lane of that name, or of that batch size."""
        return next((lane for lane in self.lanes if lane.key == key), None)

    def lr_of(self, batch_size: int) -> float:
        """The lr a lane at this batch size trains with (the lr rule, relative to the scenario's B)."""
        return lane_lr(self.scenario, batch_size, self.lr_rule, self.n_train)

    def add_lane(self, batch_size: int) -> Lane:
        """A new lane (last in lane order) from theta_0; B above N is clamped to N. RaceError: a repeat,
        more than MAX_LANES lanes, a bad value, or not enough memory (checked before allocating)."""
        b = min(check_batch_size(batch_size), self.n_train)
        self._check_new(b, batch_size)
        check_race_memory(self.scenario, [b], self.chains, self.lanes[0].sim.problem if self.lanes else None)
        return self._add(batch_size)

    def _check_new(self, b: int, asked: int, name: str | None = None) -> None:
        if name is not None:
            if self.lane_keyed(name) is not None:
                raise RaceError(f"lane {name!r}: already a lane; expected each name once")
        elif self.lane(b) is not None:
            clamp = f" ({asked} clamped to N = {self.n_train})" if b != asked else ""
            raise RaceError(f"batch size {b}{clamp}: already a lane; expected a batch size not in the race")
        if len(self.lanes) >= MAX_LANES:
            raise RaceError(f"batch size {b}: the race has {MAX_LANES} lanes already; expected at most {MAX_LANES}")

    def _add(self, batch_size: int, name: str | None = None) -> Lane:
        b = min(check_batch_size(batch_size), self.n_train)
        self._check_new(b, batch_size, name)
        schedule = None
        if name is not None:
            from bsim.schedule.schedule import lane_schedule
            schedule = lane_schedule(self.scenario, name)
        lane = Lane(self.scenario, b, self.lr_of(b), chains=self.chains, device=self.device, stats=self.stats,
                    name=name, schedule=schedule)
        lane.limit = self.limit
        self.lanes.append(lane)
        return lane

    def remove_lane(self, batch_size: int) -> Lane:
        """Take the lane of that batch size out of the race (RaceError: no such lane, or the last one)."""
        lane = self.lane(batch_size)
        if lane is None:
            have = ", ".join(str(x.batch_size) for x in self.lanes)
            raise RaceError(f"batch size {batch_size!r}: no such lane; expected one of {have}")
        if len(self.lanes) == 1:
            raise RaceError(f"batch size {batch_size}: the only lane; a race keeps at least one")
        self.lanes.remove(lane)
        if self.last_lane is lane:
            self.last_lane = None
        return lane

    # ------------------------------------------------------------ ends
    def set_limit(self, axis: str, n: int) -> None:
        """Every lane (and any added later) stops after n steps, or once it has seen at least n samples."""
        if axis not in LIMIT_AXES:
            raise RaceError(f"limit {axis!r}: expected one of {', '.join(LIMIT_AXES)}")
        self.limit = (axis, int(n))
        for lane in self.lanes:
            lane.limit = self.limit

    def set_lane_steps(self, steps) -> None:
        """Each lane stops at its own step count (a replay's recorded ends), in lane order."""
        if len(steps) != len(self.lanes):
            raise RaceError(f"{len(steps)} step counts for {len(self.lanes)} lanes; expected one per lane")
        self.limit = None
        for lane, n in zip(self.lanes, steps):
            lane.limit = ("steps", int(n))

    def clear_limits(self) -> None:
        """No lane has an end any more (a replay that goes on as a live race)."""
        self.limit = None
        for lane in self.lanes:
            lane.limit = None

    # ------------------------------------------------------------ the lockstep
    @property
    def running(self) -> bool:
        """Some lane may take another step."""
        return any(lane.running for lane in self.lanes)

    def next_lane(self) -> Lane | None:
        """The running lane furthest behind on the axis (first in lane order on ties); None: all stopped."""
        best, best_pos = None, 0.0
        for lane in self.lanes:
            if lane.running:
                pos = lane.position(self.by)
                if best is None or pos < best_pos:
                    best, best_pos = lane, pos
        return best

    def step(self) -> bool:
        """One step of the lane furthest behind; False when no lane can step (all finished or diverged).

        A step that diverges stops that lane (a notice in ``notices``) and still counts as done.
        """
        lane = self.next_lane()
        if lane is None:
            return False
        self.last_lane = lane
        ok = lane.step()
        for observe in self.observers:
            observe(lane)
        if not ok:
            self.notices.append(f"lane {lane.label}: {lane.sim.message}; the other lanes go on")
        return True

    def round(self) -> int:
        """One lockstep round: the lane furthest ahead takes one step and every other lane catches up to it.

        Returns the steps taken (0: nothing can step). The steps are those free running would take, in
        the same order: a round only chooses where to stop.
        """
        running = [lane for lane in self.lanes if lane.running]
        if not running:
            return 0
        lead = max(running, key=lambda lane: lane.position(self.by))     # the first of the furthest ahead
        before, taken = lead.steps, 0
        while lead.running and lead.steps == before and self.step():
            taken += 1
        target = lead.position(self.by)
        while (nxt := self.next_lane()) is not None and nxt.position(self.by) < target:
            self.step()
            taken += 1
        return taken

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    # ------------------------------------------------------------ frames
    @property
    def position(self) -> float:
        """The lockstep's front: the least position of the lanes that have not diverged."""
        alive = [lane.position(self.by) for lane in self.lanes if not lane.diverged]
        return min(alive) if alive else 0.0

    def frame(self, timing: bool = True) -> RaceFrame:
        """Every lane's LaneFrame, in lane order (reads each lane's device once), and the loss targets
        with the lane first to each (``targets``: every frame read is seen)."""
        lanes = tuple(lane.frame(timing) for lane in self.lanes)
        self.reach.observe(lanes)
        return RaceFrame(lanes=lanes, by=self.by, position=self.position, targets=self.reach.targets(self.by))


def check_race_memory(scenario: Scenario, batch_sizes, chains: int = 1, problem=None) -> None:
    """Refuse, before allocating, lanes whose problems (and K-chain ensembles) would not fit.

    Each lane holds its own copy of the problem: the estimate is the sum of
    ``bsim.problems.memory.estimate_bytes`` over the lanes, against MEMORY_FRACTION of the memory
    available; with ``problem`` (a lane already built) and chains K > 1, also the sum over the lanes
    of K x ``bsim.ensemble.memory.bytes_per_chain``, against half of it (the ensemble's budget).
    """
    from bsim.problems.memory import MEMORY_FRACTION, _gb, available_bytes, estimate_bytes
    sizes = list(batch_sizes)
    avail = available_bytes()
    if sizes and avail is not None:
        need = sum(estimate_bytes(lane_scenario(scenario, b, scenario.optimizer.lr))[0] for b in sizes)
        if need > MEMORY_FRACTION * avail:
            raise RaceError(f"--batch-sizes: {len(sizes)} lanes need about {_gb(need)} of memory (each its own "
                            f"copy of the problem), more than {MEMORY_FRACTION:.0%} of the {_gb(avail)} "
                            f"available; expected fewer lanes or a smaller problem")
    if problem is None or chains <= 1:
        return
    from bsim.ensemble.memory import BUDGET_FRACTION, bytes_per_chain
    from bsim.ensemble.memory import available_bytes as device_bytes
    need = sum(chains * bytes_per_chain(problem, b) for b in sizes)
    budget = BUDGET_FRACTION * device_bytes(problem.device)
    if need > budget:
        label = scenario.where("chains", "race", value=chains) or scenario.where("chains", value=chains)
        label = f"{label}: chains = {chains}" if label else f"--chains {chains}"    # a recording's, or the flag
        raise RaceError(f"{label}: the lanes' ensembles need about {_gb(need)} of memory, more than "
                        f"half of the {_gb(2 * budget)} available; expected fewer chains or lanes")
