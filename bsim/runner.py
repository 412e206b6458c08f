"""The runner: a worker thread that owns the Simulation and never waits for a screen.

A view sends items with ``submit`` (thread-safe): actions of ``bsim.actions``
(applied between steps) and the controls of ``bsim.controls``. The runner
publishes the latest ``Frame`` through ``on_frame`` at a steady rate (``fps``)
and right after any change, and reports notices through ``on_event(kind, text)``
with kind "notice", "error" or "caption". Both callbacks are called on the
runner's thread: give it something thread-safe (Textual's post_message).

Without a thread (``threaded=False``) items are handled at once and ``advance(n)``
takes steps synchronously: how tests and the export drive it.
"""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Callable

from bsim.actions import SETTING_ACTIONS, ActionError, PausePoint, Reset, SetChains, SwitchProblem, absolute
from bsim.controls import (
    AddCaption, DataRequest, Faster, JumpToCaption, Pause, PlaneRequest, Probe, Resume, RunnerState, Slower, Step,
    ToggleRecording, TogglePause,
)
from bsim.dataview import data_view
from bsim.frame import Frame
from bsim.pacing import Pacer, one_line
from bsim.recording import Caption, Recorder, compare_check, new_recording_path

#: seconds between two "progress" events while a replay fast-forwards to where its recording began
PROGRESS_PERIOD = 0.25


def progress_line(done: int, total: int, target: int, width: int = 20) -> str:
    """'fast-forwarding to step N' with a bar of ``width`` cells and the percentage (under 80 columns)."""
    frac = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
    full = int(frac * width)
    bar = "━" * full + ("╸" if full < width else "") + "─" * max(width - full - 1, 0)
    return f"fast-forwarding to step {target:,}: {bar} {frac:4.0%} (q quits)"


class Runner(Pacer):
    """Steps one Simulation on its own thread (or on demand) and publishes its frames.

    Owns: the simulation once started (nobody else touches it), the holds at the timeline's captions and
    pause events, the end of a replay and its check, the log of the actions it
    applied (``action_log``: what a recording holds) and the recorder.
    May touch: the simulation, the recorder, the two callbacks. Never a view.

    How a key reaches the simulation and comes back as a frame (``]`` at batch size 8): the app's
    binding sends ``actions.ScaleBatchSize(2)`` to ``submit``; on the runner's thread ``_handle``
    passes a setting action to ``_apply_setting``, which makes it absolute against the settings in
    force (``actions.absolute``: ``SetBatchSize(16)``), calls ``Simulation.apply`` (a ``match`` on
    the action's type: ``set_batch_size(16)``), logs the absolute action (``action_log``, the
    recorder) and sends its notice to ``on_event``; the change marks the frame dirty, so the next
    ``Simulation.frame()`` goes to ``on_frame`` at once, and the views draw it.
    """

    def __init__(self, sim, scenario=None, *, on_frame: Callable[[Frame], None] | None = None,
                 on_event: Callable[[str, str], None] | None = None, fps: float = 20.0,
                 paused: bool = False, timing: bool = True, replay: bool = False,
                 speed: int | None = None, threaded: bool = True, recordings_dir: str | Path = "recordings",
                 replay_end: int | None = None):
        super().__init__(on_frame=on_frame, on_event=on_event, fps=fps, paused=paused, speed=speed,
                         threaded=threaded)   # the pace: bsim.pacing
        self.sim = sim
        sim.ball_law_curves = True        # the app draws the ball's law (a headless run never pays for its curves)
        self.initial_scenario = (scenario or sim.scenario).copy()   # what a recording starts from
        self.timing = timing
        self.replay = replay
        self.replay_end = replay_end      # a replay pauses at the recording's last tick and checks it
        self.recordings_dir = Path(recordings_dir)
        self.action_log: list[tuple[int, object]] = []   # (tick, action that ran / caption / pause point)
        self.recorder: Recorder | None = None
        self.latest: Frame | None = None
        self._held_at: int | None = None   # tick at which we stopped for a caption / pause event
        self._ncaptions = len(sim.captions)
        self._caption: tuple[int, str] | None = None   # the caption on the banner now
        self._shown: tuple[int, str] | None = None     # the last caption shown (cleared or not)
        self._begin_at: int | None = None  # a replay's fast-forward the thread does first (``begin_at``)
        self._replay_ended = False         # a replay reached its end: going on clears its caption
        self._plane = None        # (PlaneRequest, the loss on its grid) for the ball panel's plane
        self._controls = {
            Pause: self._pause, Resume: self._resume, TogglePause: self._toggle_pause, Step: self._one_step_paused,
            Faster: self._change_speed, Slower: self._change_speed, ToggleRecording: self._toggle_recording,
            AddCaption: self._add_caption, JumpToCaption: self._jump, Probe: self._probe,
            PlaneRequest: self._plane_request, DataRequest: self._data_request,
        }
        self._data_req: DataRequest | None = None

    # ------------------------------------------------------------ public API
    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and finish a recording (its check is written)."""
        self._stop_thread(timeout)
        if self.recorder is not None:
            self._stop_recording()

    def begin_at(self, target: int) -> None:
        """Fast-forward to ``target`` (where a recording began) before the first step: with a thread, in the
        thread, so that the screen is up meanwhile; without one, now. Says so when done."""
        if self.threaded:
            self._begin_at = target
        else:
            self._fast_forward_to_start(target)

    def _fast_forward_to_start(self, target: int) -> None:
        self._begin_at = None
        self.fast_forward(target, progress=True)
        if self.sim.tick >= target:
            self.on_event("notice", f"fast-forwarded to step {target:,}, where the recording began")

    def fast_forward(self, target: int, progress: bool = False) -> int:
        """Step (no frames, no holds) until ``sim.tick`` reaches ``target`` or the runner stops; returns steps
        taken. ``progress``: a "progress" event (``progress_line``) at once and every PROGRESS_PERIOD s."""
        sim = self.sim
        start = sim.tick
        last = time.perf_counter()
        if progress:
            self.on_event("progress", progress_line(0, target - start, target))
        while sim.tick < target and not self._stop.is_set() and sim.step():
            if progress and (now := time.perf_counter()) - last >= PROGRESS_PERIOD:
                last = now
                self.on_event("progress", progress_line(sim.tick - start, target - start, target))
        sim.take_notices()
        self._show_new_captions()
        if sim.diverged:
            self.paused = True
            self.on_event("error", sim.message)
        self._dirty = True
        return sim.tick - start

    # ----------------------------------------------------------- stepping
    def _can_step(self) -> bool:
        return self._begin_at is not None or not (self.paused or self.sim.diverged)

    def _hold_for_events(self) -> bool:
        """Stop before a caption (replay) or a pause event; True when the step must wait."""
        sim = self.sim
        if self._held_at == sim.tick:
            return False
        events = sim.timeline.upcoming(sim.tick)
        if not events:
            return False
        caption = next((ev.caption for ev in reversed(events) if ev.caption), None)
        pause = any(ev.pause for ev in events) or (self.replay and caption is not None)
        if caption is not None:
            self._show_caption(sim.tick, caption)
        if pause:
            self._held_at = sim.tick
            self.paused = True
            self._dirty = True
            self.on_event("notice", f"paused at step {sim.step_count}" + (": space to go on" if self.replay or caption else ""))
            return True
        return False

    def _one_step(self) -> bool:
        """One step, honouring timeline holds; False when no step was taken."""
        sim = self.sim
        if self._begin_at is not None:
            self._fast_forward_to_start(self._begin_at)
            return True
        if sim.diverged:
            self._diverged_notice()
            return False
        if self._hold_for_events():
            return False
        ok = sim.step()
        for text in sim.take_notices():
            self.on_event("notice", f"at step {sim.step_count - 1}: {text}")   # applied before this step
        self._show_new_captions()
        if not ok:
            self.paused = True
            self._dirty = True
            self.on_event("error", sim.message or "the run diverged: reset (r), and lower the lr (-)")
            return False
        if self.replay_end is not None and sim.tick >= self.replay_end:
            self._end_of_replay()
        return True

    def _end_of_replay(self) -> None:
        """Pause at the recording's last tick, show the caption of its events there, compare the check."""
        end, self.replay_end = self.replay_end, None
        self.replay = False
        self._adaptive_goes_live()
        self.paused = True
        self._dirty = True
        self._replay_ended = True
        sim = self.sim
        caption = next((ev.caption for ev in reversed(sim.timeline.upcoming(sim.tick)) if ev.caption), None)
        if caption is not None:       # the closing caption: shown now, no second hold for its pause
            self._show_caption(sim.tick, caption)
            self._held_at = sim.tick
        rec = self.initial_scenario.recording or {}
        drift = compare_check(rec, self.sim, str(self.initial_scenario.path or "recording"))
        if drift:
            self.on_event("error", drift)
        else:
            same = " and matches its check" if rec.get("theta_sha256") else ""
            self.on_event("notice", f"the replay reached the end of the recording (step {end}){same}: "
                                    "paused; space goes on as a live run")

    def _diverged_notice(self) -> None:
        self.paused = True
        self._dirty = True
        self.on_event("error", "the run diverged: reset with r (and lower the lr with -) to go on")

    def _show_new_captions(self) -> None:
        captions = self.sim.captions
        if len(captions) > self._ncaptions:
            self._ncaptions = len(captions)
            self._show_caption(*captions[-1])

    def _show_caption(self, tick: int, text: str) -> None:
        if self._shown != (tick, text):     # once: a cleared caption does not come back with its event's step
            self._shown = self._caption = (tick, text)
            self.on_event("caption", text)
            self._dirty = True

    def _adaptive_goes_live(self) -> None:
        """A replay followed the recorded growths of an adaptive batch size (bsim.schedule); live, it tests again."""
        if self.sim.schedule is not None:
            self.sim.schedule.follow = False

    def _live_after_end(self) -> None:
        """Going on (or changing a setting) after a replay's end: a live run, without the closing caption."""
        if self._replay_ended:
            self._replay_ended = False
            self._clear_caption()

    def _clear_caption(self) -> None:
        """The replay is over (taken over, or gone on past its end): its caption no longer says what is on screen."""
        if self._caption is not None:
            self._caption = None
            self.on_event("caption", "")
            self._dirty = True

    # ------------------------------------------------------------ items
    def _handle(self, item) -> None:
        if self._begin_at is not None:     # an item sent before the thread began (R with a replay): after the
            self._fast_forward_to_start(self._begin_at)    # fast-forward, at the tick the recording began
        self._dirty = True
        try:
            if isinstance(item, SETTING_ACTIONS):
                self._apply_setting(item)
            elif type(item) in self._controls:
                self._controls[type(item)](item)
            else:
                self.on_event("error", f"unknown request {item!r}")
        except ActionError as exc:
            self.on_event("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a recording error or a bug: a notice, never a crash
            self.on_event("error", one_line(exc))

    def _apply_setting(self, item) -> None:
        """Apply a setting action to the state it reaches; the absolute action that ran is logged."""
        sim = self.sim
        action = absolute(item, sim)
        if self.replay and not isinstance(action, SetChains):   # the chains leave the run (chain 0) as it is
            self._take_over()
        self._live_after_end()
        notice = sim.apply(action)
        self._log(action)
        if isinstance(action, (Reset, SwitchProblem)):
            self._ncaptions = len(sim.captions)
            if self._plane is not None:    # the panel's grid (it will not ask for it again), on the new loss
                self._plane = (self._plane[0], self._plane[0].loss_on(sim.problem))
        self.on_event("notice", notice)

    def _pause(self, _item) -> None:
        if not self.paused:
            self.paused = True
            if self.recorder is not None:
                self._log(PausePoint())
            self.on_event("notice", f"paused at step {self.sim.step_count}: space to go on, n for one step")

    def _resume(self, _item) -> None:
        if self.sim.diverged:
            self._diverged_notice()
        elif self.paused:
            self.paused = False
            self._next_step_at = time.perf_counter()
            self._live_after_end()
            self.on_event("notice", "running")

    def _one_step_paused(self, _item) -> None:
        sim = self.sim
        if not self.paused:
            self.paused = True
            self.on_event("notice", f"paused at step {sim.step_count}")
        elif self._one_step():
            self.on_event("notice", f"one step: step {sim.step_count}, batch of {sim.last_batch_size}")

    def _take_over(self) -> None:
        """A setting changed during a replay: drop the rest of the timeline, go live."""
        dropped = self.sim.timeline.drop_from(self.sim.tick)
        self._adaptive_goes_live()
        self.replay = False
        self.replay_end = None
        self._clear_caption()
        self.on_event("notice", f"you took over: the rest of the recording ({dropped} events) is dropped; "
                                "this is a live run now")

    def _log(self, item) -> None:
        tick = self.sim.tick
        self.action_log.append((tick, item))
        if self.recorder is not None:
            try:
                self.recorder.add(tick, item)
            except Exception as exc:  # noqa: BLE001 - RecordingError: a notice, the run goes on
                self.on_event("error", one_line(exc))

    # ------------------------------------------------------------ recording
    def _toggle_recording(self, item: ToggleRecording) -> None:
        if self.recorder is None:
            target = Path(item.path) if item.path is not None else new_recording_path(self.recordings_dir)
            self.recorder = Recorder.start(target, scenario=self.initial_scenario, actions=self.action_log,
                                           began_at=self.sim.tick, timeline=self.sim.timeline)
            self.on_event("notice", f"recording to {target} (R stops, c adds a caption)")
        else:
            self._stop_recording()

    def _stop_recording(self) -> None:
        rec, self.recorder = self.recorder, None
        rec.stop(self.sim)
        self.on_event("notice", f"recording saved: {rec.path} (replay it with: bsim replay {rec.path})")

    def _add_caption(self, item: AddCaption) -> None:
        text = " ".join(str(item.text).split())
        if self.recorder is None:
            self.on_event("error", "captions are for recordings: press R to start recording first")
            return
        if not text:
            self.on_event("error", "an empty caption: nothing added")
            return
        self._log(Caption(text))
        self._show_caption(self.sim.tick, text)
        self.on_event("notice", f"caption at step {self.sim.step_count}: {text}")   # as the counter counts

    def _jump(self, _item) -> None:
        sim = self.sim
        target = sim.timeline.next_caption_at(sim.tick, after=True)
        if target is None:
            self.on_event("error", "no caption ahead in the timeline")
            return
        taken = self.fast_forward(target, progress=True)     # a long jump says how far it got
        self.on_event("notice", f"jumped {taken} steps to step {sim.step_count}")
        if self.replay_end is not None and sim.tick >= self.replay_end:
            self._end_of_replay()           # the end of the recording: its closing caption, its check
        elif sim.tick == target:
            self._held_at = None
            self._hold_for_events()

    # ------------------------------------------------------------ probe and plane
    def _probe(self, item: Probe) -> None:
        """Run the probe now (between steps), say what it found, publish a frame that carries it."""
        sim = self.sim
        stats = sim.noise_stats
        if stats is None:
            self.on_event("error", "no probe: the noise statistics are off for this run")
            return
        if sim.diverged:
            self._diverged_notice()
            return
        res = stats.probe(batches=item.batches)
        if res.ratio is not None:    # 64 independent fresh batches: the ratio's se is grad_noise_se / predicted
            pred = f"predicted {res.predicted:.4g} (ratio {res.ratio:.3f} ± {res.grad_noise_se / res.predicted:.2g})"
        else:                        # none yet, or 0 at B = N (no noise to compare with)
            pred = "no prediction yet" if res.predicted is None else f"predicted {res.predicted:.4g}"
        self.on_event("notice", f"probe at step {res.step}: {res.batches} batches at B={res.batch_size}, "
                                f"mean |g_B - G|^2 = {res.grad_noise_mean:.4g} ± {res.grad_noise_se:.2g}, {pred}")
        self._publish()

    def _data_request(self, item: DataRequest) -> None:
        self._data_req = item if item.on else None

    def _plane_request(self, item: PlaneRequest) -> None:
        """The training loss on the ball panel's grid of the parameter plane."""
        if self._plane is None or self._plane[0] != item:
            self._plane = (item, item.loss_on(self.sim.problem))

    # ------------------------------------------------------------ frames
    def state(self) -> RunnerState:
        sim = self.sim
        return RunnerState(
            paused=self.paused, speed=self.speed,
            recording=str(self.recorder.path) if self.recorder is not None else None,
            replay=self.replay, timeline_left=sim.timeline.left(sim.tick),
            next_caption_at=sim.timeline.next_caption_at(sim.tick), caption=self._caption, plane=self._plane,
            chains_since=sim.chains_since,
            data=data_view(sim.problem, sim.theta, self._data_req.points) if self._data_req else None,
        )

    def _read_frame(self):
        return self.sim.frame(timing=self.timing)
