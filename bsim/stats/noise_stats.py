"""NoiseStats: the gradient-noise statistics and the epsilon-ball of a running Simulation.

It is an observer of the simulation (called after every step) and a frame
hook (called when a view reads a frame). Per step it keeps only references to
the step's parameters and batch gradient (the strategy may take more: the
LSTM's half-batch gradient, a full gradient every K steps): no host sync.
Every ``cap`` buffered steps, and at frame time, the strategy processes them
together on the device; at frame time the results come to the host in one
transfer and are folded into the averages (``window``).

Two strategies (``strategy.NoiseStrategy``):
  exact    linear models: G and tr(Sigma) from all N per-example gradients in
           closed form, the exact (or linearised) ball around theta*;
  sampled  the LSTM: tr(Sigma) and |G|^2 from two batch sizes, the spread of
           the iterates around their running average.

Per step (at the parameters theta_t the step started from, g_B its batch gradient):
  grad_noise = |g_B - G|^2, grad_noise_theory = c_B tr(Sigma) for the sampling
  in force and the step's own batch size (a short last batch included),
  noise_scale = tr(Sigma) / |G|^2, cos(g_B, G), |G|.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from bsim.problems.base import PROBE_STREAM, stream_seed
from bsim.stats.ball_law import BallLawTracker
from bsim.stats.cfactor import TEMPERATURE_FORMULA, VarianceTheory, c_factor, temperature
from bsim.stats.exact import ExactNoise
from bsim.stats.info import ProbeResult, StatsInfo, VariancePoint
from bsim.stats.probe import run_probe
from bsim.stats.radius_se import trail_measure
from bsim.stats.landscape_noise import LandscapeNoise
from bsim.stats.sampled import SampledNoise
from bsim.stats.strategy import NoiseStrategy, Settings, SettingsLog, StepQuantities, to_host
from bsim.stats.window import BallWindow, VarianceByBatchSize

SHUFFLE_NOTE = "shuffle: c_B of B distinct examples, (N-B)/(B(N-1)), at fixed parameters"
#: after a change of B mid-epoch: the ball counts as reached once the excess of E|e|^2 over it is below this
SETTLED = 0.05


class NoiseStats:
    """Attach with ``NoiseStats(sim)`` (Simulation does it unless stats=False).

    Owns: the choice of strategy (exact when the problem declares closed-form
    per-example gradients, else sampled), the buffer of steps not yet processed,
    the settings log, the grad_noise averages per batch size, the ball window of
    the settings in force, the ball's law across the settings visited
    (``ball_law``), the probe generator and the latest probe. Reads the
    simulation (settings, step count, last step) and registers itself in its
    ``observers`` and ``frame_hooks``; writes nothing else of it. Writes a
    frame's statistics columns and its ``stats``, ``ball`` and ``probe`` fields,
    and (``fill_law``, which the simulation calls after every frame hook) ``ball_law``.
    """

    def __init__(self, sim, full_grad_every: int | None = None, buffer: int = 256, stride: int | None = None):
        self.sim = sim
        self._every_arg = full_grad_every
        self._stride_arg = stride
        self._buffer_arg = max(1, int(buffer))
        sim.observers.append(self.observe)
        sim.frame_hooks.append(self.fill)
        self._setup()

    def detach(self) -> None:
        """Stop observing the simulation."""
        if self.observe in self.sim.observers:
            self.sim.observers.remove(self.observe)
        if self.fill in self.sim.frame_hooks:
            self.sim.frame_hooks.remove(self.fill)

    @property
    def full_every(self) -> int:
        """K: grad_noise enters the averages every K steps (1: every step)."""
        return self.strategy.full_every

    # ---------------------------------------------------------------- set-up
    def _setup(self) -> None:
        p = self.sim.problem
        self.problem, self.n = p, p.n_train
        self.strategy: NoiseStrategy
        if p.closed_form_per_example:
            self.strategy = ExactNoise(p, self._every_arg, self._buffer_arg,
                                       drop_last=self.sim.scenario.optimizer.drop_last)
        elif getattr(p, "landscape", False):     # a few parameters: tr(Sigma) exact, not the two-batch estimate
            self.strategy = LandscapeNoise(p, self._every_arg, self._buffer_arg)
        else:
            self.strategy = SampledNoise(p, self._every_arg, self._stride_arg, self._buffer_arg)
        self._clear()

    def _clear(self) -> None:
        """Forget every average (a reset or a problem switch)."""
        self.strategy.clear()
        self._steps, self._thetas, self._grads, self._bsz = [], [], [], []
        self._pending: list = []
        self.log = SettingsLog()
        self._next_step: int | None = None
        self._window: BallWindow | None = None
        self._window_start = -1
        self._mixed: tuple[int, int] | None = None    # (segment start, last step of its mixed epoch)
        self.by_batch_size = VarianceByBatchSize(self.n)
        balls = getattr(self.strategy, "balls", None)
        self.law = BallLawTracker(balls, self.n, self.strategy.drop_last) if balls is not None else None
        self.probe_result: ProbeResult | None = None
        self._probe_settings: tuple | None = None     # the settings the probe was taken at
        self._probe_gen = torch.Generator(device=self.problem.device)
        self._probe_gen.manual_seed(stream_seed(self.sim.scenario.seed, PROBE_STREAM))

    def _sync_run(self) -> None:
        """Rebuild after a problem switch; restart after a reset."""
        sim = self.sim
        if sim.problem is not self.problem:
            self._setup()
        elif self._next_step is not None and sim.step_count != self._next_step - 1:
            self._clear()

    # ------------------------------------------------------------- per step
    def observe(self, sim) -> None:
        if sim.problem is not self.problem:
            self._setup()
        elif sim.step_count != self._next_step:
            self._clear()
        step = sim.step_count
        self._next_step = step + 1
        self.log.mark(step, Settings(sim.batch_size, sim.last_lr, sim.momentum, sim.sampling))
        if self.log.current_start == step:
            end = self._mixed_epoch_end(sim, step)
            self._mixed = (step, end) if end is not None else None
        if not self.strategy.takes(step):
            return
        self._steps.append(step)
        self._thetas.append(sim.last_theta)
        self._grads.append(sim.last_grad)
        self._bsz.append(sim.last_batch_size)
        self.strategy.record(sim, step, len(self._thetas) - 1)
        if len(self._thetas) >= self.strategy.cap:
            self._flush()

    def _flush(self) -> None:
        if not self._thetas:
            return
        with torch.no_grad():
            self._pending.append(self.strategy.flush(self._steps, self._thetas, self._grads, self._bsz))
        self._steps, self._thetas, self._grads, self._bsz = [], [], [], []

    def _drain(self) -> None:
        """Bring the processed steps to the host (one transfer) and fold them into the averages."""
        self._flush()
        if not self._pending:
            return
        to_host(self._pending)
        for chunk in self._pending:
            self.strategy.fold(chunk, self.log, self.by_batch_size, self._window_for)
        self._pending = []

    def _mixed_epoch_end(self, sim, step: int) -> int | None:
        """The last step of a shuffled epoch that mixes batch sizes, when settings that began at ``step``
        (its first step) changed B mid-epoch, or came while such an epoch runs; else None.

        The reshuffled ball assumes whole epochs at one B (``bsim.stats.reshuffled``): it holds from
        the next epoch on. That epoch's end, from the sampler after the step: the N - pos examples left
        take ceil((N - pos) / B) more steps (floor with drop_last, which skips the remainder).
        """
        samp = sim.sampler
        if getattr(self.strategy, "balls", None) is None:
            return None                    # no prediction of the ball (the LSTM): nothing assumes whole epochs
        if sim.sampling != "shuffle" or samp.batch_in_epoch == 1:
            return None                    # this step began an epoch: whole epochs at one B from here
        segments = self.log.segments
        before = segments[-2][1] if len(segments) > 1 else None
        ongoing = self._mixed is not None and self._mixed[1] >= step
        if not ongoing and (before is None or before.batch_size == sim.batch_size):
            return None
        if samp.batch_in_epoch == 0:       # the epoch ended with this step
            return step
        left, B = samp.n - samp.pos, min(sim.batch_size, samp.n)
        return step + (left // B if samp.drop_last else -(-left // B))

    def _window_for(self, seg_start: int, settings: Settings) -> BallWindow:
        """The ball window of the settings that began at ``seg_start`` (a new one when they changed).

        After a change of B mid-epoch (shuffle) the burn-in starts at the next epoch boundary."""
        if self._window is None or self._window_start != seg_start:
            self._record_trail()
            self._window, self._window_start = BallWindow(seg_start, *self._burn_in_and_block(seg_start, settings)), \
                seg_start
        return self._window

    def _burn_in_and_block(self, seg_start: int, settings: Settings) -> tuple[int, int]:
        """The window's burn-in (from the next epoch boundary after a mixed epoch) and block, in steps."""
        burn, block = self.strategy.window_shape(settings)
        if self._mixed is not None and self._mixed[0] == seg_start:
            burn += self._mixed[1] + 1 - seg_start
        return burn, block

    def counted_from(self) -> int | None:
        """The first step (1-based) the measured ball of the settings of the last step counts, after the
        burn-in (the ensemble's epoch window counts from the same step); None before any step."""
        start, settings = self.log.current_start, self.log.current
        if start is None:
            return None
        if self._window is not None and self._window_start == start:
            return self._window.first_counted
        return start + self._burn_in_and_block(start, settings)[0]

    def _record_trail(self) -> None:
        """The trail's measurement so far into the ball's law, at the settings of its window."""
        if self.law is None or self._window is None:
            return
        settings = dict(self.log.segments)[self._window_start]
        relax = self.strategy.balls.get(settings.batch_size, settings.lr, settings.momentum, settings.sampling,
                                        self.strategy.drop_last).relaxation_steps
        self.law.measured(settings, trail=trail_measure(self._window, relax))

    def fill_law(self, sim, f, chains: list) -> None:
        """f.ball_law, after every frame hook (``chains``: the ensemble's [(settings, RadiusMeasure)]).

        A window that ended between frames (a change of setting) was recorded as it ended; the ones
        under way may still hold the settings of the last step while the frame's settings (the next
        step's) changed: each measurement goes to its own settings' point.
        """
        if self.law is None:
            return
        self._record_trail()
        for settings, measure in chains:
            self.law.measured(settings, chains=measure)
        f.ball_law = self.law.law(Settings(sim.batch_size, sim.lr, sim.momentum, sim.sampling), sim.lr_scaling,
                                  with_curves=sim.ball_law_curves)

    # ----------------------------------------------------------------- frame
    def fill(self, sim, f) -> None:
        """Fill a frame: the contract columns, the extra CSV columns and f.stats, f.ball, f.probe."""
        self._sync_run()
        self._drain()
        settings = Settings(sim.batch_size, sim.lr, sim.momentum, sim.sampling)
        f.temperature = temperature(sim.lr, self.n, sim.batch_size, sim.momentum, sim.sampling)
        f.full_grad_every = self.strategy.full_every
        q = self.strategy.step_quantities(sim) if (sim.step_count > 0 and sim.last_grad is not None) else None
        if q is not None:
            f.full_grad_norm = math.sqrt(max(q.full_norm2, 0.0))
            den = math.sqrt(max(q.batch_norm2, 0.0)) * f.full_grad_norm
            f.cos_to_full = q.dot / den if den > 0 else None
            f.grad_noise = q.grad_noise
            last = self.log.current                    # the settings of the step just taken
            cb_last = c_factor(self.n, sim.last_batch_size, last.sampling if last else sim.sampling)
            f.grad_noise_theory = cb_last * q.trace_sigma if q.trace_sigma is not None else None
            f.noise_scale = self.strategy.noise_scale(q)
            f.trace_sigma = q.trace_sigma
        ball = self.strategy.ball(sim, settings, self._current_window(settings))
        if self._mixed is not None and sim.step_count <= self._mixed[1] and settings.sampling == "shuffle":
            start, end = self._mixed
            settle, relax = self._settles_at(start, end, settings)
            mixed = (f"B changed mid-epoch: the epoch that ends at step {end} mixes batch sizes; whole epochs at "
                     f"B = {sim.batch_size} (what the prediction assumes) begin at step {end + 1}, where the "
                     f"measured ball's burn-in begins; E|e|^2 comes within {SETTLED:.0%} of the new ball at about "
                     f"step {settle} (its excess falls by e^2 each relaxation time -2/ln rho = {relax:.3g} steps, "
                     f"~1/(lr lambda_min), from step {start})")
            ball = dataclasses.replace(ball, note=f"{ball.note}; {mixed}" if ball.note else mixed, holds_from=end + 1,
                                       settles_at=settle)
            if self._window is None or self._window_start != start:   # no window yet: count from the boundary
                ball = dataclasses.replace(ball, burn_in_left=ball.burn_in + end - sim.step_count)
        f.ball_radius_theory = ball.radius_theory
        f.ball_radius = ball.radius_measured
        f.ball = ball
        f.ball_theory = ball.kind
        f.stats = self._stats_info(settings, q, f.temperature, f.noise_scale if q is not None else None)
        f.probe = self._current_probe()

    def _settles_at(self, start: int, end: int, settings: Settings) -> tuple[int, float]:
        """(the step E|e|^2 is within SETTLED of the new ball, the relaxation time) after B changed at ``start``.

        The excess over the new ball falls as rho^t (rho: the second-moment operator's spectral radius,
        relaxation R = -2/ln rho), from |r_old^2 / r_new^2 - 1| (the predictions of the settings before and
        now; one relaxation time where either is unknown) to SETTLED after (R/2) ln(excess / SETTLED) steps;
        never before the whole epochs begin (end + 1)."""
        balls = self.strategy.balls
        now = balls.get(settings.batch_size, settings.lr, settings.momentum, settings.sampling, self.strategy.drop_last)
        relax = now.relaxation_steps
        before = [s for st, s in self.log.segments if st < start]
        old = balls.get(before[-1].batch_size, before[-1].lr, before[-1].momentum, before[-1].sampling,
                        self.strategy.drop_last) if before else None
        if old is not None and old.radius and now.radius:
            excess = abs(old.radius ** 2 / now.radius ** 2 - 1.0)
            steps = 0.5 * relax * math.log(max(excess / SETTLED, 1.0))
        else:
            steps = relax
        return max(end + 1, start + int(math.ceil(steps))), relax

    def _current_window(self, settings: Settings) -> BallWindow | None:
        """The window of the settings in force, if the steps since they began have filled one."""
        if self.log.current == settings and self._window is not None and self._window_start == self.log.current_start:
            return self._window
        return None

    def _stats_info(self, settings: Settings, q: StepQuantities | None, temp: float,
                    noise_scale: float | None) -> StatsInfo:
        samp, n = settings.sampling, self.n
        trace = q.trace_sigma if q is not None else None
        pts = tuple(VariancePoint(b, samp, k, mean, se, th) for b, k, mean, se, th in self.by_batch_size.points(samp))
        note = self.strategy.note
        if samp == "shuffle":
            note = (note + "; " if note else "") + SHUFFLE_NOTE
        theory = VarianceTheory(trace, n, samp) if trace is not None else None
        smoothed, window = self.strategy.noise_scale_smoothed()
        cos_mean, cos_window = self.strategy.cos_to_full_mean()
        return StatsInfo(
            trace_sigma=trace, trace_sigma_label=self.strategy.trace_sigma_label,
            full_grad_norm2=q.full_norm2 if q is not None else None, noise_scale=noise_scale, temperature=temp,
            c_b=c_factor(n, settings.batch_size, samp), batch_size=settings.batch_size, sampling=samp, n_train=n,
            variance_theory=theory,
            variance_measured=pts, full_grad_every=self.strategy.full_every, note=note,
            full_grad=q.full_grad if q is not None else None, batch_grad=q.batch_grad if q is not None else None,
            noise_scale_smoothed=smoothed if q is not None else None, noise_scale_window=window,
            cos_to_full_mean=cos_mean if q is not None else None, cos_to_full_window=cos_window,
            temperature_formula=TEMPERATURE_FORMULA.get(samp, ""))

    # ----------------------------------------------------------------- probe
    def probe(self, batches: int = 32) -> ProbeResult:
        """K fresh batches at the current parameters from the PROBE stream (``bsim.stats.probe``);
        later frames carry the result in ``frame.probe``."""
        self._sync_run()
        sim = self.sim
        self.probe_result = run_probe(self.problem, sim.theta, sim.step_count, sim.batch_size, sim.sampling,
                                      self._probe_gen, self.strategy, batches)
        self._probe_settings = self._probe_key()
        return self.probe_result

    def _probe_key(self) -> tuple:
        sim = self.sim
        return (id(sim.problem), sim.batch_size, sim.lr, sim.sampling)

    def _current_probe(self) -> ProbeResult | None:
        """The probe, until B, lr, sampling or the problem change or the run is reset (then it is dropped)."""
        res = self.probe_result
        if res is not None and (self._probe_key() != self._probe_settings or self.sim.step_count < res.step):
            self.probe_result = None
        return self.probe_result
