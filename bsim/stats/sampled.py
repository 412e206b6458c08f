"""The sampled strategy (the LSTM, any model without closed-form per-example gradients).

tr(Sigma) and |G|^2 come from the two-batch estimator (``twobatch``): every
``stride`` steps the gradient of the first half of the step's own batch is
taken beside the batch gradient, and both enter exponential averages. The
full gradient (N examples) is computed every ``full_every`` steps for the
grad_noise averages, and at every frame's own step. With no known optimum
the "ball" is the spread of the iterates around their running average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch

from bsim.stats.cfactor import c_factor
from bsim.stats.fullgrad import stats_dtype
from bsim.stats.info import BallInfo
from bsim.stats.strategy import Chunk, Settings, SettingsLog, StepQuantities, vec
from bsim.stats.twobatch import TwoBatchAverage, half_batch_grad
from bsim.stats.window import BallWindow, VarianceByBatchSize

#: the two-batch estimate (a half-batch gradient) every this many steps
LSTM_STRIDE = 8
#: the full gradient (N examples, ~N/B steps' worth of work) every this many steps (a multiple of the stride)
LSTM_FULL_GRAD_EVERY = 400
#: horizon (steps) of the running average the spread is measured around
SPREAD_HORIZON = 200
#: horizon (steps) of the two-batch averages of tr(Sigma) and |G|^2
TWO_BATCH_HORIZON = 500
#: the running mean of cos(g_B, G) over this many full-gradient steps (every LSTM_FULL_GRAD_EVERY steps)
COS_WINDOW = 16


@dataclass(frozen=True)
class TwoBatchEstimate:
    """The current two-batch estimates: tr(Sigma), |G|^2 and their ratio B_simple (None before any)."""

    trace_sigma: float | None
    full_grad_norm2: float | None
    noise_scale: float | None
    estimates: int          # half-batch gradients folded in so far (since the last reset)


@dataclass
class SampledChunk(Chunk):
    """Per buffered step: |g_B|^2, |g_(B/2)|^2 (steps with B >= 2, at ``has``), |theta - running average|^2;
    at the steps ``full_at`` (positions in the chunk) the rows |g_B - G|^2, g_B.G, |G|^2 of ``full``."""

    HOST_FIELDS = ("batch_norm2", "small_norm2", "spread2", "full")

    batch_norm2: torch.Tensor | np.ndarray = None
    small_norm2: torch.Tensor | np.ndarray = None
    spread2: torch.Tensor | np.ndarray = None
    full: torch.Tensor | np.ndarray = None
    has: np.ndarray = None
    full_at: np.ndarray = None


class SampledNoise:
    """Gradient noise estimated from the steps' own batches (two batch sizes), for non-linear models.

    Owns: the half-batch gradients and full gradients taken since the last
    flush, the two-batch averages, the running average of the iterates (the
    spread's centre) and the full gradient at the latest frame's step. Reads
    the problem and the simulation's last step (``last_theta``, ``last_grad``,
    ``last_idx``, ``last_batch_size``); its extra gradients never touch the
    simulation's parameters or RNG. Writes only into the averages and windows
    NoiseStats hands to ``fold``.
    """

    def __init__(self, problem, full_grad_every: int | None, stride: int | None, buffer: int):
        self.problem, self.n = problem, problem.n_train
        self.dtype = stats_dtype(problem.device)
        self.stride = int(stride or LSTM_STRIDE)
        self.full_every = int(full_grad_every or LSTM_FULL_GRAD_EVERY)
        if self.full_every % self.stride:
            raise ValueError(f"full_grad_every {self.full_every} is not a multiple of the stride {self.stride}")
        self.cap = buffer
        self.trace_sigma_label = (f"two-batch estimate (B and B/2 of the batch every {self.stride} steps), "
                                  f"averaged over ~{TWO_BATCH_HORIZON} estimates")
        self.note = (f"the full gradient is computed every {self.full_every} steps (and at every frame's own "
                     f"step); grad_noise averages use those steps")
        self.clear()

    def clear(self) -> None:
        self._small: list[torch.Tensor | None] = []
        self._fulls: list[tuple[int, torch.Tensor]] = []
        self.two = TwoBatchAverage(TWO_BATCH_HORIZON)
        self._ema: torch.Tensor | None = None
        self._frame_full: tuple[int, torch.Tensor] | None = None
        self._recent_cos = np.zeros(0)       # cos(g_B, G) at the last COS_WINDOW full-gradient steps

    def estimate(self) -> TwoBatchEstimate:
        """The two-batch estimates as they stand (folded steps only: NoiseStats drains at frame time)."""
        return TwoBatchEstimate(self.two.trace_sigma, self.two.grad_norm2, self.two.noise_scale, self.two.steps)

    # ------------------------------------------------------------ per step
    def takes(self, step: int) -> bool:
        return step % self.stride == 0   # a half-batch gradient every `stride` steps

    def record(self, sim, step: int, index: int) -> None:
        """The half-batch gradient of the step's own batch; the full gradient every ``full_every`` steps."""
        b = sim.last_batch_size
        self._small.append(half_batch_grad(self.problem, sim.last_theta, sim.last_idx) if b >= 2 else None)
        if step % self.full_every == 0:
            self._fulls.append((index, self.problem.full_grad(sim.last_theta)))

    def flush(self, steps, thetas, grads, batch_sizes) -> SampledChunk:
        Gb = torch.stack(grads)
        nb = (Gb * Gb).sum(1)
        has = [i for i, g in enumerate(self._small) if g is not None]
        ns = (torch.stack([self._small[i] for i in has]) ** 2).sum(1) if has else Gb.new_zeros(0)
        Th = torch.stack(thetas).to(self.dtype)
        if self._ema is None:
            self._ema = Th[0].clone()
        run = torch.empty_like(Th)
        ema, w = self._ema, self.stride / SPREAD_HORIZON  # one sample stands for `stride` steps
        for k in range(Th.shape[0]):
            torch.lerp(ema, Th[k], w, out=run[k])
            ema = run[k]
        self._ema = ema.clone()
        d2 = ((Th - run) ** 2).sum(1)
        pos = [p for p, _ in self._fulls]
        if pos:
            Gf = torch.stack([G for _, G in self._fulls])
            gf = Gb[pos]
            full = torch.stack([((gf - Gf) ** 2).sum(1), (gf * Gf).sum(1), (Gf * Gf).sum(1)])
        else:
            full = Gb.new_zeros(3, 0)
        self._small, self._fulls = [], []
        return SampledChunk(steps=np.asarray(steps, dtype=np.int64), batch_sizes=np.asarray(batch_sizes, dtype=np.int64),
                            batch_norm2=nb, small_norm2=ns, spread2=d2, full=full,
                            has=np.asarray(has, dtype=np.int64), full_at=np.asarray(pos, dtype=np.int64))

    def fold(self, ch: SampledChunk, log: SettingsLog, by_batch_size: VarianceByBatchSize,
             window_for: Callable[[int, Settings], BallWindow]) -> None:
        steps, bsz, has = ch.steps, ch.batch_sizes, ch.has
        samp_of = np.array([log.at(int(s)).sampling for s in steps])
        if len(has):
            cs = np.array([c_factor(self.n, int(b) // 2, s) for b, s in zip(bsz[has], samp_of[has])])
            cb = np.array([c_factor(self.n, int(b), s) for b, s in zip(bsz[has], samp_of[has])])
            self.two.update(ch.small_norm2, ch.batch_norm2[has], cs, cb)
        if len(ch.full_at):
            g2, gG, G2 = np.asarray(ch.batch_norm2, dtype=float)[ch.full_at], ch.full[1], ch.full[2]
            den = np.sqrt(np.maximum(g2, 0.0)) * np.sqrt(np.maximum(np.asarray(G2, dtype=float), 0.0))
            cos = np.divide(np.asarray(gG, dtype=float), den, out=np.full(len(den), np.nan), where=den > 0)
            self._recent_cos = np.concatenate([self._recent_cos, cos])[-COS_WINDOW:]
        traces = self.full_traces(ch)
        for j, p in enumerate(ch.full_at):
            samp, tr = str(samp_of[p]), traces[j]
            theory = c_factor(self.n, int(bsz[p]), samp) * tr if tr is not None else math.nan
            by_batch_size.add(samp, bsz[p:p + 1], ch.full[0, j:j + 1], np.array([theory]), self.full_every)
        for lo, hi, settings, seg_start in log.ranges(steps):
            window_for(seg_start, settings).add(steps[lo:hi], ch.spread2[lo:hi])

    def full_traces(self, ch: SampledChunk) -> list[float | None]:
        """tr(Sigma) at each full-gradient step of the chunk: the two-batch average as it stands."""
        return [self.two.trace_sigma] * len(ch.full_at)

    def window_shape(self, settings: Settings) -> tuple[int, int]:
        """(burn-in, block) of the measured spread: 3 and 5 horizons of the running average."""
        return 3 * SPREAD_HORIZON, 5 * SPREAD_HORIZON

    # ------------------------------------------------------------ per frame
    def _full_grad_at_frame(self, sim) -> torch.Tensor:
        if self._frame_full is None or self._frame_full[0] != sim.step_count:
            with torch.no_grad():
                self._frame_full = (sim.step_count, self.problem.full_grad(sim.last_theta))
        return self._frame_full[1]

    def step_quantities(self, sim) -> StepQuantities:
        """The step just taken: its G exactly (N examples, once per frame), tr(Sigma) from the two-batch average."""
        with torch.no_grad():
            g = sim.last_grad.to(self.dtype)
            G = self._full_grad_at_frame(sim).to(self.dtype)
            noise, gG, g2, G2 = torch.stack([((g - G) ** 2).sum(), (g * G).sum(), (g * g).sum(), (G * G).sum()]).tolist()
        return StepQuantities(step=sim.step_count, grad_noise=noise, dot=gG, batch_norm2=g2, full_norm2=G2,
                              trace_sigma=self.two.trace_sigma)

    def noise_scale(self, q: StepQuantities) -> float | None:
        """B_simple from the two-batch averages (both tr(Sigma) and |G|^2 estimated)."""
        return self.two.noise_scale

    def noise_scale_smoothed(self) -> tuple[float | None, int]:
        """The two-batch B_simple is already a ratio of averages (horizon: the two-batch average's)."""
        beta = getattr(self.two, "beta", None)
        return self.two.noise_scale, (int(round(1 / (1 - beta))) if beta is not None and beta < 1 else 0)

    def cos_to_full_mean(self) -> tuple[float | None, int]:
        """cos(g_B, G) averaged over the last COS_WINDOW steps that took the full gradient (every
        ``full_every`` steps), and the steps used."""
        ok = self._recent_cos[np.isfinite(self._recent_cos)]
        return (float(ok.mean()) if len(ok) else None), len(ok)

    def full_grad_and_trace(self, theta: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        return self.problem.full_grad(theta).to(self.dtype), self.two.trace_sigma

    def ball(self, sim, settings: Settings, window: BallWindow | None) -> BallInfo:
        """The measured spread around the running average; no prediction (no known optimum)."""
        burn = 3 * SPREAD_HORIZON
        left = window.burn_in_left(sim.step_count) if window else burn
        center = vec(self._ema) if (self._ema is not None and self.problem.small) else None
        return BallInfo(label=f"spread around the running average of the iterates (EMA over {SPREAD_HORIZON} steps)",
                        sampling=settings.sampling, center=center,
                        center_label=f"running average of the iterates (EMA over {SPREAD_HORIZON} steps)",
                        radius_theory=None, radius_measured=window.radius if window else None,
                        radius_se=window.radius_se if window else None, window_steps=window.count if window else 0,
                        burn_in=burn, burn_in_left=left, covariance=None, radius_additive=None,
                        radius_small_lr=None, lr_limit=None, spectral_radius=None, stable=None,
                        note="no known optimum (non-convex): no prediction of the ball, only the measured spread")
