"""The race's runner: a worker thread that owns a Race and never waits for a screen.

As ``bsim.runner.Runner`` does for one Simulation: a view sends controls with ``submit`` (thread-safe);
the runner publishes the latest ``RaceFrame`` (with a ``RunnerState``) through ``on_frame`` at most
``fps`` times a second and right after any change, and reports through ``on_event(kind, text)``
(kind "notice" or "error"). Both callbacks run on the runner's thread. While the screen draws the
answer to a key it sets ``ui_busy`` and the thread sleeps (up to ``max_yield`` s), as Runner does.

Controls: bsim.controls' Pause, Resume, TogglePause, Step, Faster, Slower and ToggleRecording, and
bsim.race.controls' AddLane and RemoveLane. Speed: a cap on lane steps per second (all lanes together,
each ``Race.step()`` is one), moved through bsim.controls.SPEEDS; None: as fast as it goes.
Step (while paused): one lockstep round (``Race.round``): the lane furthest ahead takes one step and
every other lane catches up to it. When every lane has stopped (its end reached, or diverged) the
runner pauses; Resume then lifts the ends (a replay goes on as a live race).

Without a thread (``threaded=False``) controls are handled at once and ``advance(n)`` takes n lane
steps synchronously: how tests drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bsim.controls import (
    Faster, Pause, PlaneRequest, Resume, RunnerState, Slower, Step, ToggleRecording, TogglePause,
)
from bsim.errors import BsimInputError
from bsim.pacing import Pacer
from bsim.race.controls import AddLane, RemoveLane
from bsim.race.frame import RaceFrame
from bsim.race.race import Race


class RaceRunner(Pacer):
    """Steps one Race on its own thread (or on demand) and publishes its frames.

    Owns: the race once started (nobody else touches it), the pace (pause, speed, yielding to the
    screen: bsim.pacing) and the recording in progress. May touch: the race, the two callbacks. Never a view.
    """

    thread_name = "bsim-race-runner"
    stopped_text = "the race stopped"
    speed_unit = " (lane steps, all lanes together)"

    def __init__(self, race: Race, *, on_frame: Callable[[RaceFrame], None] | None = None,
                 on_event: Callable[[str, str], None] | None = None, fps: float = 20.0, paused: bool = False,
                 speed: int | None = None, threaded: bool = True, timing: bool = True,
                 recordings_dir: str | Path = "recordings"):
        super().__init__(on_frame=on_frame, on_event=on_event, fps=fps, paused=paused, speed=speed,
                         threaded=threaded)
        self.race = race
        self.timing = timing
        self.recordings_dir = Path(recordings_dir)
        self.recording: Path | None = None
        self.latest: RaceFrame | None = None
        self._plane = None        # (PlaneRequest, the loss on its grid): every lane has the same data, so one
        self._controls = {
            Pause: self._pause, Resume: self._resume, TogglePause: self._toggle_pause, Step: self._round,
            Faster: self._change_speed, Slower: self._change_speed, AddLane: self._add_lane,
            RemoveLane: self._remove_lane, ToggleRecording: self._toggle_recording,
            PlaneRequest: self._plane_request,
        }

    # ------------------------------------------------------------ public API
    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; a recording in progress is written where the race stands."""
        self._stop_thread(timeout)
        if self.recording is not None:
            self._toggle_recording(ToggleRecording())

    # ------------------------------------------------------------ stepping
    def _can_step(self) -> bool:
        """Not while paused; when every lane has stopped (its end, or diverged) the runner pauses and says so."""
        if self.paused:
            return False
        if not self.race.running:
            self._all_stopped()
            return False
        return True

    def _one_step(self) -> bool:
        """One lane's step; False when none could step (the runner then pauses and says why)."""
        if not self.race.step():
            self._all_stopped()
            return False
        self._say_divergences()
        return True

    def _say_divergences(self) -> None:
        for text in self.race.take_notices():
            self._dirty = True
            self.on_event("error", text)

    def _all_stopped(self) -> None:
        self.paused = True
        self._dirty = True
        if all(lane.diverged for lane in self.race.lanes):
            self.on_event("error", "every lane diverged: lower the lr (a new race) to go on")
        else:
            self.on_event("notice", "every lane has reached its end: paused; space goes on as a live race")

    # ------------------------------------------------------------ controls
    def _handle(self, item) -> None:
        self._dirty = True
        handler = self._controls.get(type(item))
        if handler is None:
            self.on_event("error", f"unknown request {item!r}")
            return
        try:
            handler(item)
        except BsimInputError as exc:       # RaceError: a repeat, too many lanes, no memory, ...
            self.on_event("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: a notice, never a crash
            self.on_event("error", f"{type(exc).__name__}: {exc}")

    def _pause(self, _item) -> None:
        if not self.paused:
            self.paused = True
            self.on_event("notice", "paused: space to go on, n for one round")

    def _resume(self, _item) -> None:
        if not self.paused:
            return
        if not self.race.running and any(not lane.diverged for lane in self.race.lanes):
            self.race.clear_limits()
        if not self.race.running:
            self.on_event("error", "every lane diverged: nothing to run")
            return
        self.paused = False
        self._next_step_at = time.perf_counter()
        self.on_event("notice", "running")

    def _round(self, _item) -> None:
        """Step: pauses when running; when paused, one lockstep round (Race.round)."""
        if not self.paused:
            self._pause(None)
            return
        taken = self.race.round()
        self._say_divergences()
        where = ", ".join(f"{lane.label} step {lane.steps}" for lane in self.race.lanes)
        self.on_event("notice", f"one round ({taken} steps): {where}" if taken else "no lane can step")

    def _add_lane(self, item: AddLane) -> None:
        lane = self.race.add_lane(item.batch_size)
        clamp = f" ({item.batch_size} clamped to N = {self.race.n_train})" if lane.batch_size != item.batch_size else ""
        self.on_event("notice", f"lane B={lane.batch_size}{clamp}, lr {lane.lr:.4g}: from the start, catching up")

    def _remove_lane(self, item: RemoveLane) -> None:
        lane = self.race.remove_lane(item.batch_size)
        self.on_event("notice", f"lane B={lane.batch_size} removed")

    def _toggle_recording(self, item: ToggleRecording) -> None:
        """Start: write the race so far to the file; stop (again, or at the end): write where it stands."""
        from bsim.race.recording import write_race_recording
        if self.recording is None:
            from bsim.recording import new_recording_path
            target = Path(item.path) if item.path is not None else new_recording_path(self.recordings_dir)
            write_race_recording(target, self.race)
            self.recording = target
            self.on_event("notice", f"recording the race to {target} (R again saves where it stands)")
        else:
            target, self.recording = self.recording, None
            write_race_recording(target, self.race)
            self.on_event("notice", f"race saved: {target} (replay it with: bsim replay {target})")

    # ------------------------------------------------------------ frames
    def state(self) -> RunnerState:
        return RunnerState(paused=self.paused, speed=self.speed,
                           recording=str(self.recording) if self.recording is not None else None,
                           plane=self._plane)

    def _plane_request(self, item: PlaneRequest) -> None:
        """The training loss on the screen's grid of the parameter plane (the lanes share data, l2 and θ*)."""
        if self._plane is None or self._plane[0] != item:
            self._plane = (item, item.loss_on(self.race.lanes[0].sim.problem))

    def _read_frame(self):
        return self.race.frame(timing=self.timing)
