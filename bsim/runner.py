"""The runner: a worker thread that owns the Simulation and never waits for a screen.

A view sends items with ``submit`` (thread-safe): actions of ``bsim.actions``
(applied between steps) and the runner's own controls below. The runner
publishes the latest ``Frame`` through ``on_frame`` at a steady rate (``fps``)
and right after any change, and reports notices through ``on_event(kind, text)``
with kind "notice", "error", "caption" or "state". Both callbacks are called on
the runner's thread: give it something thread-safe (Textual's post_message).

``history`` keeps every user action applied, with the tick at which it was
applied (and, while recording, captions and pause points): what a recording
needs. Timeline events (the scenario's own) are the simulation's business.

Without a thread (``threaded=False``) items are handled at once and ``advance(n)``
takes steps synchronously: how tests drive it.
"""

from __future__ import annotations

import datetime
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bsim import actions as A
from bsim.frame import Frame

#: steps-per-second caps that f / F move through; None is "as fast as it goes"
SPEEDS: tuple[int | None, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, None)


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
    """The next higher steps/s cap of SPEEDS (f)."""


@dataclass(frozen=True)
class Slower:
    """The next lower steps/s cap of SPEEDS (F)."""


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
    """K fresh batches at the current parameters (``sim.noise_stats.probe``), between steps (v).

    The batches come from the statistics' own generator: the trajectory is untouched.
    The result rides on the frames (extra["probe"]) until B, lr or sampling change or the run is reset.
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


@dataclass
class RunnerState:
    """What a view needs to know about the runner (sent in ``frame.extra["runner"]``)."""

    paused: bool = False
    speed: int | None = None          # steps/s cap, None = max
    recording: str | None = None      # path while recording
    replay: bool = False              # a replay whose timeline still drives the run
    next_batch_size: int = 0          # the settings the next step will use
    next_lr: float = 0.0
    timeline_left: int = 0
    next_caption_at: int | None = None
    caption: tuple[int, str] | None = None   # the latest caption shown
    plane: tuple[PlaneRequest, Any] | None = None   # (request, numpy array ny x nx of losses)
    theta_prev: tuple[float, ...] | None = None     # where the last step started (small problems)
    title: str = ""                   # the scenario's title (a problem switch changes it)
    n_params: int = 0
    extra: dict = field(default_factory=dict)


SETTING_ACTIONS = (A.SetBatchSize, A.SetLR, A.SetLRScaling, A.SetMomentum, A.SetSampling, A.Reset, A.SwitchProblem)


class Runner:
    def __init__(self, sim, scenario=None, *, on_frame: Callable[[Frame], None] | None = None,
                 on_event: Callable[[str, str], None] | None = None, fps: float = 20.0,
                 paused: bool = False, timing: bool = True, replay: bool = False,
                 speed: int | None = None, threaded: bool = True, recordings_dir: str | Path = "recordings",
                 replay_end: int | None = None):
        self.sim = sim
        self.initial_scenario = (scenario or sim.scenario).copy()
        self.on_frame = on_frame or (lambda f: None)
        self.on_event = on_event or (lambda kind, text: None)
        self.fps = fps
        self.timing = timing
        self.threaded = threaded
        self.replay = replay
        self.replay_end = replay_end      # a replay pauses at the recording's last tick and checks it
        self.recordings_dir = Path(recordings_dir)
        self.history: list[tuple[int, object]] = []
        self.speed = speed
        self.paused = paused
        self.recorder = None
        self.latest: Frame | None = None
        self.steps_taken = 0              # steps taken by this runner (for the bench)
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty = True
        self._held_at: int | None = None   # tick at which we stopped for a caption / pause event
        self._ncaptions = len(sim.captions)
        self._caption: tuple[int, str] | None = None
        self._plane_req: PlaneRequest | None = None
        self._plane: tuple[PlaneRequest, Any] | None = None
        self._probe_key: tuple | None = None    # the settings the shown probe was taken at
        self._next_step_at = time.perf_counter()
        #: set by a screen while it draws the frame that answers a key: the thread then leaves the
        #: GIL to it (up to ``max_yield`` s), so the key's effect is not drawn behind training steps
        self.ui_busy = threading.Event()
        self.max_yield = 0.05

    # ------------------------------------------------------------ public API
    def submit(self, item) -> None:
        """Queue an action or a control (thread-safe); without a thread it is handled now."""
        if self.threaded and self._thread is not None:
            self._q.put(item)
        else:
            self._handle(item)
            if self._dirty:
                self._publish()

    def start(self) -> None:
        if not self.threaded:
            self._publish()
            return
        self._thread = threading.Thread(target=self._loop, name="bsim-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and finish a recording (its check is written)."""
        self._stop.set()
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.recorder is not None:
            self._stop_recording()

    def advance(self, n: int = 1) -> int:
        """Synchronously: handle queued items, take up to n steps, publish a frame."""
        self._drain()
        taken = 0
        for _ in range(n):
            if not self._one_step():
                break
            taken += 1
        self._publish()
        return taken

    def fast_forward(self, target: int) -> int:
        """Step (no frames, no pauses) until ``sim.tick`` reaches ``target``; returns steps taken."""
        sim = self.sim
        start = sim.tick
        while sim.tick < target and sim.step():
            self.steps_taken += 1
        sim.pause_requested = False
        if len(sim.captions) > self._ncaptions:
            self._ncaptions = len(sim.captions)
            self._show_caption(*sim.captions[-1])
        if sim.diverged:
            self.paused = True
            self.on_event("error", sim.message)
        self._dirty = True
        return sim.tick - start

    # ------------------------------------------------------------ the thread
    def _loop(self) -> None:
        """Step as fast as allowed; publish a frame every 1/fps s and right after the step following a change."""
        period = 1.0 / self.fps
        next_pub = time.perf_counter()
        try:
            while not self._stop.is_set():
                self._drain()
                if self._stop.is_set():
                    break
                if self.paused or self.sim.diverged:
                    if self._dirty:
                        self._publish()
                    self._wait(None)
                    continue
                if self.speed is not None:
                    now = time.perf_counter()
                    wait = self._next_step_at - now
                    if wait > 0:
                        if self._dirty or now >= next_pub:
                            self._publish()
                            next_pub = now + period
                        self._wait(min(wait, period))
                        continue
                    self._next_step_at = max(self._next_step_at + 1.0 / self.speed, now - 0.1)
                if self.ui_busy.is_set():
                    self._yield_to_ui()
                    continue
                self._one_step()
                now = time.perf_counter()
                if self._dirty or now >= next_pub:
                    self._publish()
                    # a costly frame (the LSTM's full gradient) is read less often: at most ~1/5 of the time
                    after = time.perf_counter()
                    next_pub = after + max(period - (after - now), 4.0 * (after - now))
        except Exception as exc:  # a bug must not leave a silent, frozen screen
            self.paused = True
            self.on_event("error", f"the simulation stopped: {type(exc).__name__}: {exc}")

    def _yield_to_ui(self) -> None:
        """Sleep (the GIL released) while the screen draws, until it is done, an item comes, or max_yield."""
        end = time.perf_counter() + self.max_yield
        while self.ui_busy.is_set() and self._q.empty() and time.perf_counter() < end:
            time.sleep(0.0005)
        self.ui_busy.clear()

    def _wait(self, timeout: float | None) -> None:
        try:
            item = self._q.get(timeout=timeout if timeout is not None else 0.5)
        except queue.Empty:
            return
        if item is not None:
            self._handle(item)

    def _drain(self) -> None:
        while not self._q.empty():
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._handle(item)

    # ----------------------------------------------------------- stepping
    def _upcoming(self) -> list:
        """Timeline events due before the next step (not yet applied)."""
        sim = self.sim
        at = sim.next_event_at()
        if at is None or at != sim.tick:
            return []
        return [ev for ev in sim.timeline if ev.at == at]

    def _hold_for_events(self) -> bool:
        """Stop before a caption (replay) or a pause event; True when the step must wait."""
        sim = self.sim
        if self._held_at == sim.tick:
            return False
        evs = self._upcoming()
        if not evs:
            return False
        caption = next((ev.caption for ev in reversed(evs) if ev.caption), None)
        pause = any(ev.pause for ev in evs) or (self.replay and caption is not None)
        if caption is not None:
            self._show_caption(sim.tick, caption)
        if pause:
            self._held_at = sim.tick
            self.paused = True
            self._dirty = True
            self.on_event("notice", f"paused at step {sim.tick}" + (": space to go on" if self.replay or caption else ""))
            return True
        return False

    def _one_step(self) -> bool:
        """One step, honouring timeline pauses; False when no step was taken."""
        sim = self.sim
        if sim.diverged:
            self._diverged_notice()
            return False
        if self._hold_for_events():
            return False
        ok = sim.step()
        sim.pause_requested = False  # honoured before the step, in _hold_for_events
        if len(sim.captions) > self._ncaptions:
            self._ncaptions = len(sim.captions)
            self._show_caption(*sim.captions[-1])
        if not ok:
            self.paused = True
            self._dirty = True
            self.on_event("error", sim.message or "the run diverged: reset (r), and lower the lr (-)")
            return False
        self.steps_taken += 1
        if self.replay_end is not None and sim.tick >= self.replay_end:
            self._end_of_replay()
        return True

    def _end_of_replay(self) -> None:
        from bsim.recording import compare_check
        end, self.replay_end = self.replay_end, None
        self.replay = False
        self.paused = True
        self._dirty = True
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

    def _show_caption(self, tick: int, text: str) -> None:
        if self._caption != (tick, text):
            self._caption = (tick, text)
            self.on_event("caption", text)
            self._dirty = True

    # ------------------------------------------------------------ items
    def _handle(self, item) -> None:
        sim = self.sim
        self._dirty = True
        try:
            if isinstance(item, SETTING_ACTIONS):
                if self.replay:
                    self._take_over()
                notice = sim.apply(item)
                self._log(item)
                if isinstance(item, (A.Reset, A.SwitchProblem)):
                    self._plane = None
                    self._ncaptions = len(sim.captions)
                self.on_event("notice", notice)
            elif isinstance(item, TogglePause):
                self._handle(Resume() if self.paused else Pause())
            elif isinstance(item, Pause):
                if not self.paused:
                    self.paused = True
                    if self.recorder is not None:
                        self._log(A.PausePoint())
                    self.on_event("notice", f"paused at step {sim.step_count}: space to go on, n for one step")
            elif isinstance(item, Resume):
                if sim.diverged:
                    self._diverged_notice()
                elif self.paused:
                    self.paused = False
                    self._next_step_at = time.perf_counter()
                    self.on_event("notice", "running")
            elif isinstance(item, Step):
                if not self.paused:
                    self.paused = True
                    self.on_event("notice", f"paused at step {sim.step_count}")
                elif self._one_step():
                    self.on_event("notice", f"one step: step {sim.step_count}, batch of {sim.last_batch_size}")
            elif isinstance(item, (Faster, Slower)):
                i = SPEEDS.index(self.speed)
                j = min(i + 1, len(SPEEDS) - 1) if isinstance(item, Faster) else max(i - 1, 0)
                if i == j:
                    self.on_event("notice", f"speed: already at {_speed_text(self.speed)}")
                else:
                    self.speed = SPEEDS[j]
                    self._next_step_at = time.perf_counter()
                    self.on_event("notice", f"speed {_speed_text(SPEEDS[i])} -> {_speed_text(self.speed)}")
            elif isinstance(item, ToggleRecording):
                if self.recorder is None:
                    self._start_recording(item.path)
                else:
                    self._stop_recording()
            elif isinstance(item, AddCaption):
                self._add_caption(item.text)
            elif isinstance(item, JumpToCaption):
                self._jump()
            elif isinstance(item, Probe):
                self._probe(item.batches)
            elif isinstance(item, PlaneRequest):
                if item != self._plane_req:
                    self._plane_req = item
                    self._plane = (item, self._plane_losses(item))
            else:
                self.on_event("error", f"unknown request {item!r}")
        except A.ActionError as exc:
            self.on_event("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a recording error or a bug: a notice, never a crash
            self.on_event("error", _one_line(exc))

    def _take_over(self) -> None:
        """A setting changed during a replay: drop the rest of the timeline, go live."""
        sim = self.sim
        dropped = len(sim.timeline) - sum(1 for ev in sim.timeline if ev.at < sim.tick)
        sim.timeline = [ev for ev in sim.timeline if ev.at < sim.tick]
        self.initial_scenario.timeline = [ev for ev in self.initial_scenario.timeline if ev.at < sim.tick]
        self.replay = False
        self.replay_end = None
        if self.recorder is not None:
            self.recorder.take_over(sim.tick)
        self.on_event("notice", f"you took over: the rest of the recording ({dropped} events) is dropped; "
                                "this is a live run now")

    def _log(self, item) -> None:
        tick = self.sim.tick
        self.history.append((tick, item))
        if self.recorder is not None:
            try:
                self.recorder.add(tick, item)
            except Exception as exc:  # noqa: BLE001 - RecordingError: a notice, the run goes on
                self.on_event("error", _one_line(exc))

    def _start_recording(self, path: str | None) -> None:
        from bsim.recording import Recorder
        if path is None:
            stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            target = self.recordings_dir / f"{stamp}.toml"
            n = 2
            while target.exists():
                target = self.recordings_dir / f"{stamp}-{n}.toml"
                n += 1
            self.recordings_dir.mkdir(parents=True, exist_ok=True)
        else:
            target = Path(path)
        self.recorder = Recorder.start(target, scenario=self.initial_scenario, history=self.history,
                                       began_at=self.sim.tick)
        self.on_event("notice", f"recording to {target} (R stops, c adds a caption)")

    def _stop_recording(self) -> None:
        rec, self.recorder = self.recorder, None
        rec.stop(self.sim)
        self.on_event("notice", f"recording saved: {rec.path} (replay it with: bsim replay {rec.path})")

    def _add_caption(self, text: str) -> None:
        text = " ".join(str(text).split())
        if self.recorder is None:
            self.on_event("error", "captions are for recordings: press R to start recording first")
            return
        if not text:
            self.on_event("error", "an empty caption: nothing added")
            return
        self._log(A.Caption(text))
        self._show_caption(self.sim.tick, text)
        self.on_event("notice", f"caption at step {self.sim.tick}: {text}")

    def _jump(self) -> None:
        sim = self.sim
        target = next((ev.at for ev in sim.timeline if ev.caption and ev.at > sim.tick), None)
        if target is None:
            self.on_event("error", "no caption ahead in the timeline")
            return
        taken = self.fast_forward(target)
        self.on_event("notice", f"jumped {taken} steps to step {sim.tick}")
        if sim.tick == target:
            self._held_at = None
            self._hold_for_events()

    def _probe(self, batches: int) -> None:
        """Run the probe now (between steps), say what it found, publish a frame that carries it."""
        sim = self.sim
        stats = getattr(sim, "noise_stats", None)
        if stats is None:
            self.on_event("error", "no probe: the noise statistics are off for this run")
            return
        if sim.diverged:
            self._diverged_notice()
            return
        res = stats.probe(batches=batches)
        self._probe_key = self._settings_key()
        pred = (f"predicted {res.predicted:.4g} (ratio {res.ratio:.3f})" if res.predicted is not None
                else "no prediction yet")
        self.on_event("notice", f"probe at step {res.step}: {res.batches} batches at B={res.batch_size}, "
                                f"mean |g_B - G|^2 = {res.grad_noise_mean:.4g} ± {res.grad_noise_se:.2g}, {pred}")
        self._publish()

    def _settings_key(self) -> tuple:
        sim = self.sim
        return (id(sim.problem), sim.batch_size, sim.lr, sim.sampling)

    def _drop_stale_probe(self) -> None:
        """Forget a probe once B, lr, sampling or the problem changed, or the run was reset."""
        stats = getattr(self.sim, "noise_stats", None)
        res = stats.probe_result if stats is not None else None
        if res is not None and (self._settings_key() != self._probe_key or self.sim.step_count < res.step):
            stats.clear_probe()

    # ------------------------------------------------------------ frames
    def state(self) -> RunnerState:
        sim = self.sim
        nxt = next((ev.at for ev in sim.timeline if ev.caption and ev.at >= sim.tick), None)
        theta_prev = None
        if sim.last_theta is not None and sim.problem.n_params <= 8:
            theta_prev = tuple(float(v) for v in sim.last_theta.tolist())
        left = len(sim.timeline) - sum(1 for ev in sim.timeline if ev.at < sim.tick)
        return RunnerState(
            paused=self.paused, speed=self.speed,
            recording=str(self.recorder.path) if self.recorder is not None else None,
            replay=self.replay, next_batch_size=sim.batch_size, next_lr=sim.lr,
            timeline_left=left, next_caption_at=nxt, caption=self._caption,
            plane=self._plane, theta_prev=theta_prev, title=sim.scenario.title, n_params=sim.problem.n_params,
        )

    def _publish(self) -> None:
        self._dirty = False
        self._drop_stale_probe()
        try:
            frame = self.sim.frame(timing=self.timing)
        except Exception as exc:  # noqa: BLE001
            self.on_event("error", f"cannot read the metrics: {_one_line(exc)}")
            return
        frame.extra["runner"] = self.state()
        self.latest = frame
        self.on_frame(frame)

    def _plane_losses(self, req: PlaneRequest):
        """Train loss at every point of the grid (rows: y from y0 to y1; columns: x)."""
        import numpy as np
        import torch
        p = self.sim.problem
        if p.n_params != 2:
            return None
        xs = torch.linspace(req.x0, req.x1, req.nx, dtype=p.dtype, device=p.device)
        ys = torch.linspace(req.y0, req.y1, req.ny, dtype=p.dtype, device=p.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        thetas = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
        with torch.no_grad():
            try:
                losses = torch.func.vmap(lambda th: p.loss(th, p.X, p.y))(thetas)
            except Exception:  # noqa: BLE001 - a loss vmap cannot batch: one at a time
                losses = torch.stack([p.loss(th, p.X, p.y) for th in thetas])
        return np.asarray(losses.reshape(req.ny, req.nx).cpu().numpy(), dtype=float)


def _speed_text(speed: int | None) -> str:
    return "max" if speed is None else f"{speed:,} steps/s"


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."

