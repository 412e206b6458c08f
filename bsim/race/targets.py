"""Who wins the race: for a few loss targets, the lane that reached each first on the race's axis.

The targets come from the race's own range: geometric between the start (the highest first train
loss a lane showed, theta_0's loss) and the best train loss any lane has shown, at TARGET_FRACTIONS of
the way in log(loss), rounded to two significant digits (more where the range is narrow). A lane reaches a target at the first frame
whose train loss is at or below it; its samples, steps and seconds there are its cost to the target.
The lane first to a target is the one with the least position on the race's axis (samples, steps or
seconds) there; ties go to the smaller batch size. The leader is the lane first to the lowest target.

Only frames are seen (train loss is measured at frames), so a reach is known to a frame's
resolution; the lanes' frames come at one lockstep position, so the comparison is fair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the targets, as fractions of the way from the start loss to the best, in log(loss)
TARGET_FRACTIONS = (0.5, 0.8, 0.95)


@dataclass(frozen=True)
class Reach:
    """One lane at the first frame at or below a target: what it cost it to get there."""

    batch_size: int | str      # the lane's key: its batch size, or its name (bsim race --lanes)
    loss: float
    samples: int
    steps: int
    seconds: float

    def position(self, by: str) -> float:
        return {"samples": float(self.samples), "steps": float(self.steps), "time": self.seconds}[by]


@dataclass(frozen=True)
class Target:
    """One loss target: every lane that reached it, first (on the race's axis) first."""

    loss: float
    reached: tuple[Reach, ...]

    @property
    def first(self) -> Reach | None:
        return self.reached[0] if self.reached else None

    def of(self, batch_size: int | str) -> Reach | None:
        return next((r for r in self.reached if r.batch_size == batch_size), None)


@dataclass(frozen=True)
class RaceTargets:
    """The targets (highest first) and the leader: the batch size first to the lowest target reached."""

    by: str
    start_loss: float
    best_loss: float
    targets: tuple[Target, ...]

    @property
    def leader(self) -> int | str | None:
        for target in reversed(self.targets):
            if target.first is not None:
                return target.first.batch_size
        return None


def lane_label(key: int | str) -> str:
    """A lane as the screen names it: 'B=8', or the name of a lane that differs by schedule."""
    return key if isinstance(key, str) else f"B={key}"


def _key_order(key: int | str) -> tuple:
    """Batch sizes in order, then names (a race may hold both)."""
    return (0, key, "") if isinstance(key, int) else (1, 0, key)


def round_to(v: float, digits: int) -> float:
    """v rounded to ``digits`` significant digits."""
    return float(f"{v:.{digits}g}") if math.isfinite(v) else v


def choose_targets(start: float, best: float, fractions=TARGET_FRACTIONS) -> list[float]:
    """Loss targets geometric between ``start`` and ``best``, each with the fewest significant digits
    (2 to 6) that keep it at or above the best and below the start, distinct, highest first; none
    when the race has not gone below its start."""
    if not (math.isfinite(start) and math.isfinite(best)) or best <= 0 or best >= start:
        return []
    out = []
    for frac in fractions:
        raw = start * (best / start) ** frac
        t = next((r for digits in range(2, 7) if best <= (r := round_to(raw, digits)) < start), raw)
        if t not in out:
            out.append(t)
    return sorted(out, reverse=True)


class TargetTracker:
    """Owns each lane's record lows: (loss, samples, steps, seconds) at every frame that beat the lane's
    own best so far, and the first train loss each lane showed. Reads LaneFrames; touches nothing else."""

    def __init__(self):
        self.lows: dict[int, list[Reach]] = {}
        self.first: dict[int, float] = {}
        self._steps: dict[int, int] = {}

    def observe(self, lanes) -> None:
        """Take one RaceFrame's lanes (a lane gone from the race is forgotten; one whose steps went back
        starts again)."""
        present = {lane.key for lane in lanes}
        for b in [b for b in self._steps if b not in present]:
            self.lows.pop(b, None), self.first.pop(b, None), self._steps.pop(b)
        for lane in lanes:
            f, b = lane.frame, lane.key
            if f.step < self._steps.get(b, 0):
                self.lows.pop(b, None), self.first.pop(b, None)
            self._steps[b] = f.step
            loss = f.train_loss
            if loss is None or not math.isfinite(loss) or f.status == "diverged":
                continue
            lows = self.lows.setdefault(b, [])
            self.first.setdefault(b, loss)
            if not lows or loss < lows[-1].loss:
                lows.append(Reach(b, float(loss), int(f.samples), int(f.step), float(lane.seconds)))

    def reach(self, batch_size: int, target: float) -> Reach | None:
        """The lane's first frame at or below ``target`` (its record lows fall: the first one that does)."""
        return next((r for r in self.lows.get(batch_size, ()) if r.loss <= target), None)

    def targets(self, by: str, fractions=TARGET_FRACTIONS) -> RaceTargets | None:
        """The race's targets now (None before any lane showed a finite loss)."""
        if not self.first:
            return None
        start = max(self.first.values())
        best = min(lows[-1].loss for lows in self.lows.values() if lows)
        out = []
        for t in choose_targets(start, best, fractions):
            reached = [r for b in sorted(self.lows, key=_key_order) if (r := self.reach(b, t)) is not None]
            reached.sort(key=lambda r: (r.position(by), _key_order(r.batch_size)))
            out.append(Target(t, tuple(reached)))
        return RaceTargets(by, start, best, tuple(out))
