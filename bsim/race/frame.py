"""What a race's views read: one RaceFrame per publish, holding each lane's own Frame.

The contract between the race's runner (``bsim.race.runner``) and its screen
(``bsim.app.race``): the screen never touches a lane's simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bsim.controls import RunnerState
    from bsim.frame import Frame
    from bsim.race.targets import RaceTargets

#: the budget axes lanes advance on in lockstep
AXES = ("samples", "steps", "time")
#: at most this many lanes (a screen's worth; more is refused)
MAX_LANES = 8


class LaneName:
    """A lane's key and label, from its ``name`` (a lane by schedule: ``bsim race --lanes``) or else its
    ``batch_size``: what a lane (bsim.race.lanes.Lane) and its published LaneFrame share."""

    name: str | None
    batch_size: int

    @property
    def key(self) -> int | str:
        """What tells the lane apart: its name, else its batch size (the CSV's ``lane`` column)."""
        return self.name if self.name is not None else self.batch_size

    @property
    def label(self) -> str:
        """'grow-batch', or 'B=8'."""
        return self.name if self.name is not None else f"B={self.batch_size}"


@dataclass
class LaneFrame(LaneName):
    """One lane at the moment of publishing: its batch size and lr, its own frame, its budget spent.

    ``frame`` is exactly what the lane's Simulation.frame() returns (so its step,
    epoch, samples, losses, accuracy, ball and chains' fields are the single run's).
    ``seconds``: compute time this lane's steps took on this machine (perf_counter
    around each step); ``samples_per_sec``: samples / seconds (None before a step, or without timing).
    ``finished``: the lane reached its end (a headless budget, a replay's recorded step) and waits.
    """

    batch_size: int
    lr: float
    frame: Frame
    seconds: float = 0.0
    samples_per_sec: float | None = None
    finished: bool = False
    name: str | None = None        # a lane that differs by schedule (bsim race --lanes): its name

    @property
    def budget(self) -> dict[str, float]:
        """This lane's position on each axis: samples seen, steps taken, seconds of compute."""
        return {"samples": float(self.frame.samples), "steps": float(self.frame.step), "time": self.seconds}


@dataclass
class RaceFrame:
    """Every lane at one publish, in lane order (the order of --batch-sizes, added lanes last).

    ``by``: the lockstep axis (one of AXES); ``position``: the budget every lane
    has reached on it (the lockstep's front); ``runner``: pause, speed, recording;
    ``targets``: the loss targets and the lane first to each (``bsim.race.targets``).
    """

    lanes: tuple[LaneFrame, ...]
    by: str = "samples"
    position: float = 0.0
    runner: RunnerState | None = None
    notices: tuple[str, ...] = field(default_factory=tuple)
    targets: RaceTargets | None = None
