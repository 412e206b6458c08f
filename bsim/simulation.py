"""The simulation: minibatch SGD on a problem, deterministic, with no UI.

theta_{t+1} = theta_t - lr v_{t+1},  v_{t+1} = momentum v_t + g_B(theta_t)
(PyTorch's SGD convention; v = g_B when momentum = 0).

Actions are applied only between steps. Timeline events are keyed by
``tick``, the number of steps since the run began (resets included), so a
scenario, a seed and a timeline give the same trajectory bit for bit on one
device. The data, the initial parameters, the batch sampling and the probes
draw from separate generator streams.

Per-step work stays on the device: the host reads metrics only in
``frame()`` (the UI's frame rate, or the CSV's every-K rows) and checks for
divergence every ``check_every`` steps (every step on the CPU, where it is free).
"""

from __future__ import annotations

import math
import time
from collections import deque

import torch

from bsim.actions import (
    Action, ActionError, Reset, SetBatchSize, SetChains, SetLR, SetLRScaling, SetMomentum, SetSampling, SwitchProblem,
    event_actions, event_fields,
)
from bsim.devices import resolve_device, torch_dtype
from bsim.errors import BsimInputError
from bsim.frame import Frame
from bsim.lrscaling import scaling_factor
from bsim.problems import make_problem
from bsim.problems.base import SAMPLE_STREAM, stream_seed
from bsim.sampler import Sampler
from bsim.scenario import LR_SCALINGS, PROBLEM_SCENARIOS, SAMPLINGS, Event, Scenario
from bsim.schedule.schedule import Schedule, check_schedule
from bsim.timeline import Timeline



#: steps/s and samples/s are averaged over at least this many seconds (when the run has gone that long)
RATE_WINDOW = 1.0


class RateWindow:
    """Steps/s and samples/s over the last RATE_WINDOW seconds or more, read at each frame.

    Owns the (time, tick, samples) of the frames read since the oldest one still needed (the newest
    that is at least RATE_WINDOW old). A frame with no step since the previous one (paused, or a
    reset's new samples count) starts the window again, so a pause never dilutes the rate after it.
    """

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.marks: deque[tuple[float, int, int]] = deque([(clock(), 0, 0)])

    def restart(self, tick: int, samples: int) -> None:
        self.marks = deque([(self.clock(), tick, samples)])

    def read(self, tick: int, samples: int) -> tuple[float | None, float | None]:
        """(steps/s, samples/s) since the window's start; (None, None) when no step was taken in it."""
        now, marks = self.clock(), self.marks
        last = marks[-1]
        if tick <= last[1] or samples < last[2]:
            self.restart(tick, samples)
            return None, None
        while len(marks) > 1 and now - marks[1][0] >= RATE_WINDOW:
            marks.popleft()
        t0, tick0, samples0 = marks[0]
        marks.append((now, tick, samples))
        dt = now - t0
        if dt <= 0:
            return None, None
        return (tick - tick0) / dt, (samples - samples0) / dt


class Simulation:
    """Minibatch SGD on one problem, stepped on demand, with no UI and no thread of its own.

    Owns: the problem (data, model, theta*), the parameters and velocity, the
    sampler and its counters, the settings in force (batch size, lr and its
    scaling, momentum, sampling), the run's ``Timeline``, and divergence. Applies
    actions only between steps (``apply``); reads the device only in ``frame()``.
    May touch: its problem, its sampler, its noise statistics (``noise_stats``,
    observers called after each step). Nothing above it (runner, views) is known to it.
    """

    def __init__(self, scenario: Scenario, device: str | torch.device | None = None, stats: bool = True):
        """``stats=False`` runs without the noise statistics (bsim.stats), e.g. for benchmarks."""
        self.scenario = scenario.copy()
        try:
            self.device = resolve_device(device or scenario.device)
        except BsimInputError as exc:
            where = scenario.where("device", value=scenario.device) if device is None else None
            if where:  # the file asked for it (not a flag): name the file and line
                raise BsimInputError(f"{where}: {exc}") from None
            raise
        self.check_every = 1 if self.device.type == "cpu" else 32
        self.tick = 0
        self.observers: list = []      # callables(sim) after every step (statistics)
        self.frame_hooks: list = []    # callables(sim, frame) filling a frame's extra quantities
        self._build_problem()
        self.noise_stats = None   # bsim.stats.NoiseStats: gradient noise and the epsilon-ball, per step
        self.ball_law_curves = False   # the ball's law's predicted curves in frame.ball_law (a view that draws them sets it)
        if stats:
            from bsim.stats import NoiseStats
            self.noise_stats = NoiseStats(self)
        self.ensemble = None   # bsim.ensemble.Ensemble: chains 1..K-1 beside this run (chain 0) when chains > 1
        self.chains_since: int | None = None   # the tick of the last rebuild of the ensemble (SetChains)
        if self.scenario.chains != 1 or any(ev.chains for ev in self.scenario.timeline):
            from bsim.ensemble import attach
            self.ensemble = attach(self)
        from bsim.landscape.escape import EscapeMeter
        self.escape = EscapeMeter(self)   # basins and escapes (idle unless the problem is a landscape)
        self.timeline = Timeline(self.scenario.timeline)
        for ev in self.timeline.events:  # warn now of timeline batch sizes that will be clamped
            if ev.problem is not None:
                break
            if ev.batch_size is not None and ev.batch_size > self.n_train:
                self.scenario.warnings.append(f"timeline event at step {ev.at}: batch size {ev.batch_size} is "
                                              f"above N = {self.n_train}: it will be clamped to {self.n_train}")
        self.captions: list[tuple[int, str]] = []     # (tick, text) of the timeline's captions reached
        self.notices: list[str] = []                  # what the timeline's events changed, until taken
        self._rate = RateWindow()

    # ---------------------------------------------------------------- set-up
    def _build_problem(self) -> None:
        sc = self.scenario
        self.dtype = torch_dtype(sc.resolved_dtype())
        self.problem = make_problem(sc, self.device, self.dtype)
        opt = sc.optimizer
        self.base_batch_size = min(opt.batch_size, self.problem.n_train)
        self.batch_size = self.base_batch_size
        if opt.batch_size > self.problem.n_train:
            sc.warnings.append(f"batch size {opt.batch_size} is above N = {self.problem.n_train}: clamped to {self.problem.n_train}")
        self.lr_scaling = opt.lr_scaling
        self.base_lr = opt.lr
        self.lr = opt.lr
        self.momentum = opt.momentum
        self.sampling = opt.sampling
        self._reset_state()
        own = {k: v for k, v in (sc.schedule or {}).items() if k != "lane"}   # a race lane's is its scenario's
        check_schedule(sc, own, self.problem.n_train)
        # [schedule] (bsim.schedule): a replay of a recording follows its recorded adaptive growths
        self.schedule = Schedule(own, self, follow_recording=sc.recording is not None) if own else None

    def _reset_state(self) -> None:
        self.theta0 = self.problem.init_params(self.scenario.seed)
        self.theta = self.theta0.clone()
        self.velocity = torch.zeros_like(self.theta)
        self.step_count = 0
        gen = torch.Generator(device=self.device)
        gen.manual_seed(stream_seed(self.scenario.seed, SAMPLE_STREAM))
        self.sampler = Sampler(self.problem.n_train, self.sampling, self.scenario.optimizer.drop_last, gen, self.device)
        self.status, self.message = "running", ""
        self._ok = torch.ones((), dtype=torch.bool, device=self.device)
        self.last_loss: torch.Tensor | None = None
        self.last_grad: torch.Tensor | None = None
        self.last_theta: torch.Tensor | None = None
        self.last_idx: torch.Tensor | None = None
        self.last_batch_size = self.batch_size
        self.last_lr = self.lr

    @property
    def n_train(self) -> int:
        return self.problem.n_train

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    # ------------------------------------------------------------------ steps
    def step(self) -> bool:
        """Apply due timeline events, then take one SGD step. False once diverged.

        A step whose loss or parameters are not finite is not kept: the
        simulation stays as it was after the last finite step (parameters,
        counters, the last step's metrics), with status "diverged". On a GPU
        the check is every ``check_every`` steps: the parameters freeze at the
        last finite value and the counters run on until the check sees it.
        """
        self.apply_due_events()
        if self.diverged:
            return False
        theta, sampler = self.theta, self.sampler
        exact = self.check_every == 1
        if exact:
            saved = sampler.counters()
        idx = sampler.next_batch(self.batch_size)
        loss, g = self.problem.loss_and_grad(theta, idx)
        v = self.momentum * self.velocity + g if self.momentum else g
        new_theta = theta - self.lr * v
        if exact:
            if not (torch.isfinite(loss) and torch.isfinite(new_theta).all()):
                sampler.restore_counters(saved)
                self._mark_diverged(f"step {self.step_count + 1}")
                return False
            self.theta, self.velocity = new_theta, v
        else:
            ok = self._ok & torch.isfinite(loss) & torch.isfinite(new_theta).all()
            self.theta = torch.where(ok, new_theta, theta)
            self.velocity = torch.where(ok, v, self.velocity)
            self._ok = ok
        self.last_theta, self.last_grad, self.last_loss, self.last_idx = theta, g, loss, idx
        self.last_batch_size, self.last_lr = int(idx.shape[0]), self.lr
        self.step_count += 1
        self.tick += 1
        if not exact and self.tick % self.check_every == 0 and not bool(self._ok):
            self._mark_diverged(f"one of steps {self.step_count - self.check_every + 1}-{self.step_count}")
            return False
        if self.schedule is not None:
            self.schedule.observe(self)
        for obs in self.observers:
            obs(self)
        return True

    def run(self, n: int) -> int:
        """Take up to n steps; returns how many were taken (fewer once diverged)."""
        for i in range(n):
            if not self.step():
                return i
        return n

    def _mark_diverged(self, where: str) -> None:
        self.status = "diverged"
        self.message = (f"diverged at {where}: the loss left the finite numbers "
                        f"(lr {self.lr:g}, batch size {self.batch_size}); the last finite parameters are kept; "
                        f"reset, and lower the lr")

    # ---------------------------------------------------------------- timeline
    def apply_due_events(self) -> None:
        """Apply the timeline's events due now; their notices wait in ``notices`` (see ``take_notices``)."""
        for ev in self.timeline.due(self.tick):
            for action in event_actions(ev):
                try:
                    self.notices.append(self.apply(action))
                except ActionError as exc:   # chains that do not fit in memory: the run goes on without them
                    self.notices.append(str(exc))
            if ev.caption:
                self.captions.append((self.tick, ev.caption))
        if self.schedule is not None:
            for action, say, record in self.schedule.due(self):
                notice = self.apply(action)
                if say:
                    self.notices.append(f"schedule: {notice}")
                if record:    # an adaptive growth: a recording writes it as a timeline event
                    self.timeline.add_applied(Event(at=self.tick, **event_fields(action)))

    def take_notices(self) -> list[str]:
        """The notices of the timeline events applied since the last call."""
        out, self.notices = self.notices, []
        return out

    # ----------------------------------------------------------------- actions
    def apply(self, action: Action) -> str:
        """Apply a setting action between steps (its method, below); returns a notice of what changed."""
        match action:
            case SetBatchSize(batch_size=batch_size):
                return self.set_batch_size(batch_size)
            case SetLR(lr=lr):
                return self.set_lr(lr)
            case SetLRScaling(mode=mode):
                return self.set_lr_scaling(mode)
            case SetMomentum(momentum=momentum):
                return self.set_momentum(momentum)
            case SetSampling(mode=mode):
                return self.set_sampling(mode)
            case SetChains(chains=chains):
                return self.set_chains(chains)
            case SwitchProblem(kind=kind):
                return self.switch_problem(kind)
            case Reset():
                return self.reset()
        raise ActionError(f"unknown action {action!r}: expected one of bsim.actions.Action")

    def set_batch_size(self, batch_size: int) -> str:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ActionError(f"batch size {batch_size!r}: expected an integer >= 1")
        old_b, old_lr = self.batch_size, self.lr
        clamped = batch_size > self.n_train
        self.batch_size = min(batch_size, self.n_train)
        self.lr = self.base_lr * scaling_factor(self.lr_scaling, self.batch_size, self.base_batch_size)
        notice = f"batch size {old_b} -> {self.batch_size}"
        if clamped:
            notice += f" (clamped: {batch_size} is above N = {self.n_train})"
        if self.lr != old_lr:
            notice += f", lr {old_lr:.4g} -> {self.lr:.4g} ({self.lr_scaling} scaling)"
        return notice

    def set_lr(self, lr: float) -> str:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ActionError(f"lr {lr!r}: expected a number > 0")
        old = self.lr
        self.lr = float(lr)
        self.base_lr = self.lr / scaling_factor(self.lr_scaling, self.batch_size, self.base_batch_size)
        return f"lr {old:.4g} -> {self.lr:.4g}"

    def set_lr_scaling(self, mode: str) -> str:
        if mode not in LR_SCALINGS:
            raise ActionError(f"lr scaling {mode!r}: expected one of {', '.join(LR_SCALINGS)}")
        old = self.lr_scaling
        self.lr_scaling = mode
        self.base_lr = self.lr / scaling_factor(mode, self.batch_size, self.base_batch_size)
        return f"lr scaling {old} -> {mode}"

    def set_momentum(self, momentum: float) -> str:
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ActionError(f"momentum {momentum!r}: expected a number in [0, 1)")
        old = self.momentum
        self.momentum = float(momentum)
        return f"momentum {old:g} -> {self.momentum:g}"

    def set_sampling(self, mode: str) -> str:
        if mode not in SAMPLINGS:
            raise ActionError(f"sampling {mode!r}: expected one of {', '.join(SAMPLINGS)}")
        old = self.sampling
        self.sampling = mode
        self.sampler.set_mode(mode)
        return f"sampling {old} -> {mode}"

    @property
    def chains(self) -> int:
        """The chain count in force (1: the run alone)."""
        return self.ensemble.chains if self.ensemble is not None else 1

    def set_chains(self, chains: int) -> str:
        """Rebuild the ensemble with ``chains`` chains from this step (``bsim.ensemble.rebuild``; 1 removes it)."""
        from bsim.ensemble import rebuild
        try:
            notice = rebuild(self, chains)
        except BsimInputError as exc:
            raise ActionError(str(exc)) from None
        self.chains_since = self.tick
        return notice

    def reset(self) -> str:
        """Parameters and counters back to the start; the current settings stay."""
        self._reset_state()
        return f"reset: step 0, batch size {self.batch_size}, lr {self.lr:.4g}"

    def switch_problem(self, kind: str) -> str:
        """Switch to the bundled scenario of that problem (its problem and optimizer)."""
        from bsim.scenario import find_scenario
        if kind not in PROBLEM_SCENARIOS:
            raise ActionError(f"problem {kind!r}: expected one of {', '.join(PROBLEM_SCENARIOS)}")
        other = find_scenario(PROBLEM_SCENARIOS[kind])
        old = self.problem.kind
        self.scenario.problem = other.problem
        self.scenario.optimizer = other.optimizer
        self.scenario.dtype = "auto"
        self.scenario.title = other.title
        self._build_problem()
        return f"problem {old} -> {kind} ({other.title})"

    # ------------------------------------------------------------------ frames
    def restart_rate(self) -> None:
        """Measure steps/s and samples/s from now on: the next frame reports the rate since."""
        self._rate.restart(self.tick, self.sampler.samples)

    def frame(self, timing: bool = True) -> Frame:
        """Read the metrics of the step just taken (the host reads the device here, not per step)."""
        p, s = self.problem, self.sampler
        f = Frame(
            step=self.step_count, tick=self.tick, epoch=s.epoch, epochs_done=s.epochs_done,
            batch_in_epoch=s.batch_in_epoch, batches_per_epoch=s.batches_per_epoch(self.batch_size),
            samples=s.samples, n_train=self.n_train,
            batch_size=self.last_batch_size if self.step_count else self.batch_size,
            lr=self.last_lr if self.step_count else self.lr,
            momentum=self.momentum, lr_scaling=self.lr_scaling, sampling=self.sampling,
            problem=p.kind, device=str(self.device), status=self.status, message=self.message,
            next_batch_size=self.batch_size, next_lr=self.lr, title=self.scenario.title, n_params=p.n_params,
        )
        with torch.no_grad():
            theta = self.theta
            f.train_loss = float(p.train_loss(theta))
            tl = p.test_loss(theta)
            f.test_loss = None if tl is None else float(tl)
            acc = p.train_accuracy(theta)
            if acc is not None:
                f.train_acc = float(acc)
                acc = p.test_accuracy(theta)
                f.test_acc = None if acc is None else float(acc)
            if p.theta_star is not None:
                f.dist_to_opt = float((theta - p.theta_star).norm())
                if p.small:
                    f.theta_star = tuple(p.theta_star.tolist())
            if p.small:
                f.theta = tuple(theta.tolist())
                if self.last_theta is not None:
                    f.theta_prev = tuple(self.last_theta.tolist())
            if self.last_grad is not None:
                f.batch_loss = float(self.last_loss)
                f.grad_norm = float(self.last_grad.norm())
                if self.noise_stats is None:  # otherwise the statistics fill |G| and the cosine
                    G = p.full_grad(self.last_theta)
                    f.full_grad_norm = float(G.norm())
                    denom = f.grad_norm * f.full_grad_norm
                    f.cos_to_full = float(self.last_grad.dot(G)) / denom if denom > 0 else None
        if self.schedule is not None:
            f.batch_test, f.schedule_next = self.schedule.batch_test, self.schedule.next_change(self)
            f.batch_test_label = self.schedule.adaptive.describe() if self.schedule.adaptive is not None else ""
        if timing:
            f.steps_per_sec, f.samples_per_sec = self._rate.read(self.tick, s.samples)
        for hook in self.frame_hooks:
            hook(self, f)
        if self.noise_stats is not None:   # last: the ball's law reads the trail's window and the chains' epochs
            self.noise_stats.fill_law(self, f, self.ensemble.epoch_measures() if self.ensemble is not None else [])
        return f
