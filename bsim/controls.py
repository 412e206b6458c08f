"""The runner's controls: what a view asks of the runner itself (not of the simulation).

Setting actions (``bsim.actions``) change the simulation; these change how the
runner steps it: pause, one step, speed, recording, captions, the probe, the
loss grid of the parameter plane. ``RunnerState`` is what a view learns back,
on every frame (``Frame.runner``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: steps-per-second caps that > / < (f / F) move through; None is "as fast as it goes"
SPEEDS: tuple[int | None, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, None)


def next_speed(speed: int | None, faster: bool) -> int | None:
    """The level of SPEEDS after ``speed`` (a cap of any value, e.g. ``--pace 30``) in that direction.

    At either end the same cap comes back.
    """
    finite = [s for s in SPEEDS if s is not None]
    if faster:
        return None if speed is None else next((s for s in finite if s > speed), None)
    if speed is None:
        return finite[-1]
    return next((s for s in reversed(finite) if s < speed), speed)


# ---------------------------------------------------------------- controls
@dataclass(frozen=True)
class Pause:
    """Stop stepping (while recording, a pause point is recorded)."""


@dataclass(frozen=True)
class Resume:
    """Go on stepping (not while diverged: reset first)."""


@dataclass(frozen=True)
class TogglePause:
    """Pause or resume (space)."""


@dataclass(frozen=True)
class Step:
    """One step while paused (the panels then show that step's batch gradient); pauses when running."""


@dataclass(frozen=True)
class Faster:
    """The next higher steps/s cap of SPEEDS (>)."""


@dataclass(frozen=True)
class Slower:
    """The next lower steps/s cap of SPEEDS (<)."""


@dataclass(frozen=True)
class ToggleRecording:
    """Start recording (into ``path``, or recordings/<time>.toml), or stop it (R)."""

    path: str | None = None


@dataclass(frozen=True)
class AddCaption:
    """A caption at the current tick (only while recording)."""

    text: str


@dataclass(frozen=True)
class JumpToCaption:
    """Fast-forward (no frames drawn) to the next caption of the timeline and stop there."""


@dataclass(frozen=True)
class Probe:
    """K fresh batches at the current parameters (``the statistics' probe``), between steps (v).

    The batches come from the statistics' own generator: the trajectory is untouched.
    The result rides on the frames until B, lr or sampling change or the run is reset.
    """

    batches: int = 64


@dataclass(frozen=True)
class PlaneRequest:
    """Loss on a grid of the 2-D parameter plane: nx x ny points over [x0, x1] x [y0, y1]."""

    x0: float
    x1: float
    y0: float
    y1: float
    nx: int
    ny: int

    def loss_on(self, problem):
        """``problem``'s training loss on this grid: an (ny, nx) array, None past 2 parameters (``Problem.loss_grid``)."""
        return problem.loss_grid(self.x0, self.x1, self.y0, self.y1, self.nx, self.ny)


@dataclass(frozen=True)
class DataRequest:
    """The data panel is shown (``on``): every frame then carries ``bsim.dataview.data_view`` (d swaps it)."""

    on: bool = True
    points: int = 200


@dataclass
class RunnerState:
    """What a view needs to know about the runner (sent in ``frame.runner``)."""

    paused: bool = False
    speed: int | None = None          # steps/s cap, None = max
    recording: str | None = None      # path while recording
    replay: bool = False              # a replay whose timeline still drives the run
    timeline_left: int = 0
    next_caption_at: int | None = None
    caption: tuple[int, str] | None = None   # the latest caption shown
    plane: tuple[PlaneRequest, Any] | None = None   # (request, numpy array ny x nx of losses)
    data: Any = None                  # bsim.dataview.DataView while the data panel asks for it
    chains_since: int | None = None   # the step the ensemble was last rebuilt at (e), None: from the start


def speed_text(speed: int | None) -> str:
    """A steps/s cap as shown: "max" or "1,000 steps/s"."""
    return "max" if speed is None else f"{speed:,} steps/s"
