"""What the race screen remembers of the RaceFrames it was shown (the view's side; no model access).

Each lane keeps its own FrameBuffer (what bsim.app's panels read: its trace, its trail
of iterates, its ball) and a trace of its position on every race axis beside its
losses, so the loss chart can be drawn against samples, steps or seconds.
A lane is known by its batch size (a race never runs one B twice) and keeps its
colour while it races; a removed lane's colour goes to the next lane added.
"""

from __future__ import annotations

import numpy as np

from bsim.app.history import FrameBuffer, Trace

#: one colour per lane, in the order lanes get them (names of the chart palette, bsim.app.widgets.canvas.COLORS)
LANE_COLORS = ("blue", "orange", "green", "purple", "red", "yellow", "white", "axis")
#: the columns of a lane's race trace: its position on each axis, then its losses
LANE_COLUMNS = ("samples", "steps", "time", "train_loss", "test_loss")
LANE_COL = {name: i for i, name in enumerate(LANE_COLUMNS)}
#: each axis's unit as the screen names it
AXIS_UNITS = {"samples": "samples", "steps": "steps", "time": "seconds"}


def _f(v) -> float:
    return float("nan") if v is None else float(v)


class ArrayTrace(Trace):
    """Trace's rows, thinned the same way (by two when ``cap`` is reached), kept in one numpy array.

    ``array()`` is a view, not a copy: the loss chart reads every lane's trace at every frame, and
    turning a list of 2,000 rows into an array took about a millisecond a lane.
    """

    def __init__(self, columns, cap: int = 2048):
        super().__init__(columns, cap)
        self._data = np.empty((cap, len(columns)))
        self._n = 0

    def append(self, row: tuple[float, ...]) -> None:
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self._data[self._n] = row
        self._n += 1
        if self._n >= self.cap:
            kept = self._data[:self._n:2].copy()
            self._data[:len(kept)] = kept
            self._n = len(kept)
            self.stride *= 2

    def array(self) -> np.ndarray:
        return self._data[:self._n]

    def __len__(self) -> int:
        return self._n


class LaneHistory:
    """One lane: its FrameBuffer, its trace against the race's axes, its colour and its latest LaneFrame.

    Owns nothing but what it was shown; ``version`` moves when a new frame of this lane arrives.
    """

    def __init__(self, batch_size: int, color: str, name: str | None = None):
        self.batch_size = batch_size
        self.key = name if name is not None else batch_size     # its name (bsim race --lanes), else its B
        self.label = name if name is not None else f"B={batch_size}"
        self.color = color
        self.buffer = FrameBuffer()
        self.trace = ArrayTrace(LANE_COLUMNS)
        self.latest = None          # the LaneFrame last shown
        self.version = 0

    def add(self, lane) -> None:
        last = self.latest
        f = lane.frame
        if last is not None and (f.step, f.tick, lane.seconds) == (last.frame.step, last.frame.tick, last.seconds):
            self.latest = lane        # the same step (paused): the runner's state may still have changed
            self.buffer.latest = f
            return
        if last is not None and f.step < last.frame.step:
            self.trace = ArrayTrace(LANE_COLUMNS)      # a reset: a new run from step 0
        self.latest = lane
        self.version += 1
        self.buffer.add(f)
        if f.step > 0 or f.train_loss is not None:
            self.trace.append((float(f.samples), float(f.step), float(lane.seconds), _f(f.train_loss),
                               _f(f.test_loss)))


class RaceHistory:
    """Every lane the screen has shown, in the race's lane order, fed one RaceFrame at a time.

    Owns the lanes' histories and their colours. ``version`` moves at every RaceFrame;
    ``lane_version`` only when a lane took a step or the set of lanes changed (what
    the charts depend on). ``runs`` moves when the set of lanes changes (the loss
    chart's y range starts again).
    """

    def __init__(self):
        self.lanes: dict[int | str, LaneHistory] = {}   # batch size (or a lane's name) -> lane, in lane order
        self.latest = None                           # the RaceFrame last shown
        self.version = 0
        self.lane_version = 0
        self.runs = 0
        self.notices: list[tuple[str, str]] = []

    @property
    def order(self) -> list[LaneHistory]:
        """The lanes as the screen lists them: by batch size (a lane added later takes its place)."""
        return sorted(self.lanes.values(), key=lambda lane: lane.batch_size)

    @property
    def by(self) -> str:
        return self.latest.by if self.latest is not None else "samples"

    def add(self, race) -> None:
        self.latest = race
        self.version += 1
        wanted = [lane.key for lane in race.lanes]
        if wanted != list(self.lanes):
            self._follow_lanes(wanted, {lane.key: lane for lane in race.lanes})
        before = sum(h.version for h in self.lanes.values())
        for lane in race.lanes:
            self.lanes[lane.key].add(lane)
        if sum(h.version for h in self.lanes.values()) != before:
            self.lane_version += 1

    def _follow_lanes(self, wanted: list, frames: dict) -> None:
        """Keep the lanes still racing (and their colours), drop the others, colour the new ones."""
        kept = {b: self.lanes[b] for b in wanted if b in self.lanes}
        used = {h.color for h in kept.values()}
        free = [c for c in LANE_COLORS if c not in used]
        lanes = {}
        for b in wanted:
            if b in kept:
                lanes[b] = kept[b]
            else:
                lanes[b] = LaneHistory(frames[b].batch_size, free.pop(0) if free else LANE_COLORS[-1], frames[b].name)
        self.lanes = lanes
        self.lane_version += 1
        self.runs += 1
