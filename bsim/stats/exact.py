"""The exact strategy (linear models): every per-example gradient enters, in closed form.

At every buffered step's parameters ``fullgrad`` gives the full gradient G and
tr(Sigma) exactly (no per-example gradient is stored), so grad_noise =
|g_B - G|^2 and its prediction c_B tr(Sigma) are exact, and |theta - theta*|^2
feeds the measured ball. The predicted ball is the stationary solution of
``ball`` (exact for least squares, linearised at theta* for logistic regression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch

from bsim.lrscaling import scaling_factor
from bsim.stats import interpolation
from bsim.stats.ball import BallCache, quad_model
from bsim.stats.ball_law import curve_batch_sizes
from bsim.stats.cfactor import c_factor
from bsim.stats.fullgrad import LinearFullPass, full_grad_engine, stats_dtype
from bsim.stats.info import BallInfo
from bsim.stats.strategy import Chunk, Settings, SettingsLog, StepQuantities, vec
from bsim.stats.window import BallWindow, VarianceByBatchSize

#: an O(N d) pass per step up to this N d; above it only every K-th step enters the averages
FULL_PASS_BUDGET = 65536


#: the steps over which B_simple is averaged (a ratio of means)
NOISE_SCALE_WINDOW = 256


@dataclass
class ExactChunk(Chunk):
    """Rows of ``values``: |g_B|^2, g_B.G, |G|^2, |g_B - G|^2, [|theta - theta*|^2], tr(Sigma), one column per step."""

    HOST_FIELDS = ("values",)

    values: torch.Tensor | np.ndarray = None
    has_distance: bool = False
    full_grad_last: torch.Tensor | None = None     # G and g_B of the chunk's last step (small problems)
    batch_grad_last: torch.Tensor | None = None


class ExactNoise:
    """Gradient noise of a linear model, exactly, at every buffered step.

    Owns: the full-gradient engine (``fullgrad``), the ball predictions
    (``BallCache``), the quantities of the last processed step. Reads the
    problem and, per frame, the simulation's last step (``last_theta``,
    ``last_grad``); touches nothing of the simulation. Writes only into the
    averages and windows NoiseStats hands to ``fold``.
    """

    trace_sigma_label = "exact: all N per-example gradients (closed form)"
    note = ""

    def __init__(self, problem, full_grad_every: int | None, buffer: int, drop_last: bool = False):
        self.problem, self.n = problem, problem.n_train
        self.dtype = stats_dtype(problem.device)
        self.engine = full_grad_engine(problem)
        model = quad_model(problem)
        self.balls = BallCache(model) if model is not None else None
        #: interpolation: m* (Ma, Bassily & Belkin 2018), shown beside the rate that replaces the ball
        self.critical_batch = interpolation.critical_batch(problem.X64) \
            if model is not None and model.interpolating else None
        self._rates: dict = {}      # the rates per B of the settings in force (interpolation, the app)
        self.drop_last = bool(drop_last)   # the reshuffled ball's epochs: a short last batch, or none
        cost = self.n * problem.n_params if isinstance(self.engine, LinearFullPass) else 0
        self.full_every = int(full_grad_every or max(1, math.ceil(cost / FULL_PASS_BUDGET)))
        self.cap = min(buffer, max(8, 2 ** 16 // max(self.n, 1)))   # the K x N pass stays in cache
        self.clear()

    def clear(self) -> None:
        self._last: StepQuantities | None = None
        self._recent = np.zeros((0, 2))      # (tr Sigma, |G|^2) of the last NOISE_SCALE_WINDOW steps
        self._recent_cos = np.zeros(0)       # cos(g_B, G) of the same steps

    # ------------------------------------------------------------ per step
    def takes(self, step: int) -> bool:
        return self.full_every == 1 or step % self.full_every == 0

    def record(self, sim, step: int, index: int) -> None:
        """Nothing beyond the parameters and the batch gradient NoiseStats keeps."""

    def flush(self, steps, thetas, grads, batch_sizes) -> ExactChunk:
        Th = torch.stack(thetas)
        Gr = torch.stack(grads).to(self.dtype)
        G, tr, E = self.engine(Th)
        D = Gr - G
        parts = [Gr * Gr, Gr * G, G * G, D * D] + ([E * E] if E is not None else [])
        cols = torch.stack(parts).sum(-1)
        small = self.problem.small
        return ExactChunk(steps=np.asarray(steps, dtype=np.int64), batch_sizes=np.asarray(batch_sizes, dtype=np.int64),
                          values=torch.cat([cols, tr[None]]), has_distance=E is not None,
                          full_grad_last=G[-1] if small else None, batch_grad_last=Gr[-1] if small else None)

    def fold(self, ch: ExactChunk, log: SettingsLog, by_batch_size: VarianceByBatchSize,
             window_for: Callable[[int, Settings], BallWindow]) -> None:
        steps, bsz, v = ch.steps, ch.batch_sizes, ch.values
        g2, gG, G2, noise, tr = v[0], v[1], v[2], v[3], v[-1]
        d2 = v[4] if ch.has_distance else None
        for lo, hi, settings, seg_start in log.ranges(steps):
            samp = settings.sampling
            c = np.array([c_factor(self.n, int(b), samp) for b in bsz[lo:hi]])
            by_batch_size.add(samp, bsz[lo:hi], noise[lo:hi], c * tr[lo:hi])
            if d2 is not None:
                window_for(seg_start, settings).add(steps[lo:hi], d2[lo:hi])
        both = np.stack([np.asarray(tr, dtype=float), np.asarray(G2, dtype=float)], axis=1)
        self._recent = np.concatenate([self._recent, both])[-NOISE_SCALE_WINDOW:]
        den = np.sqrt(np.maximum(np.asarray(g2, dtype=float), 0.0)) * np.sqrt(np.maximum(np.asarray(G2, dtype=float), 0.0))
        cos = np.divide(np.asarray(gG, dtype=float), den, out=np.full(len(den), np.nan), where=den > 0)
        self._recent_cos = np.concatenate([self._recent_cos, cos])[-NOISE_SCALE_WINDOW:]
        j = len(bsz) - 1
        self._last = StepQuantities(step=int(steps[j]), grad_noise=float(noise[j]), dot=float(gG[j]),
                                    batch_norm2=float(g2[j]), full_norm2=float(G2[j]), trace_sigma=float(tr[j]),
                                    full_grad=vec(ch.full_grad_last), batch_grad=vec(ch.batch_grad_last))

    def window_shape(self, settings: Settings) -> tuple[int, int]:
        """(burn-in, block) of the measured ball: 8 relaxation times, blocks of 5 (``ball``)."""
        th = self.balls.get(settings.batch_size, settings.lr, settings.momentum, settings.sampling, self.drop_last)
        return th.burn_in, max(16, int(math.ceil(5 * th.relaxation_steps)))

    # ------------------------------------------------------------ per frame
    def step_quantities(self, sim) -> StepQuantities:
        """The step just taken: from the last fold when it covered it, else computed now."""
        if self._last is not None and self._last.step == sim.step_count:
            return self._last
        with torch.no_grad():
            g = sim.last_grad.to(self.dtype)
            G, tr, _ = self.engine(sim.last_theta[None])
            G, trace = G[0], float(tr[0])
            noise, gG, g2, G2 = torch.stack([((g - G) ** 2).sum(), (g * G).sum(), (g * g).sum(), (G * G).sum()]).tolist()
        small = self.problem.small
        return StepQuantities(step=sim.step_count, grad_noise=noise, dot=gG, batch_norm2=g2, full_norm2=G2,
                              trace_sigma=trace, full_grad=vec(G) if small else None,
                              batch_grad=vec(g) if small else None)

    def noise_scale(self, q: StepQuantities) -> float | None:
        """B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018), exact."""
        return q.trace_sigma / q.full_norm2 if q.full_norm2 > 0 else None

    def noise_scale_smoothed(self) -> tuple[float | None, int]:
        """B_simple over the last NOISE_SCALE_WINDOW steps: mean tr(Sigma) / mean |G|^2, and the steps used.

        Near theta* one step's |G|^2 is as small as the iterate's wander makes it and
        its ratio jumps by 10x from frame to frame; a ratio of means over a fixed
        number of steps (not frames) is steady and the same live and exported.
        """
        rec = self._recent[np.isfinite(self._recent).all(1)]
        if len(rec) == 0:
            return None, 0
        tr_mean, g2_mean = rec.mean(0)
        return (float(tr_mean / g2_mean) if g2_mean > 0 else None), len(rec)

    def cos_to_full_mean(self) -> tuple[float | None, int]:
        """cos(g_B, G) averaged over the last NOISE_SCALE_WINDOW steps, and the steps used.

        One step's cosine flips between about -1 and 1 near theta* (g_B is mostly noise there);
        its mean over steps says where the run stands: near 1 far away, near 0 in the ball.
        """
        ok = self._recent_cos[np.isfinite(self._recent_cos)]
        return (float(ok.mean()) if len(ok) else None), len(ok)

    def full_grad_and_trace(self, theta: torch.Tensor) -> tuple[torch.Tensor, float]:
        G, tr, _ = self.engine(theta[None])
        return G[0], float(tr[0])

    def ball(self, sim, settings: Settings, window: BallWindow | None) -> BallInfo:
        """The predicted ball for the settings in force, beside the window's measurement."""
        measured = window.radius if window else None
        se = window.radius_se if window else None
        wsteps = window.count if window else 0
        p = self.problem
        center = vec(p.theta_star) if p.small else None
        if self.balls is None:
            return BallInfo(label="no prediction", sampling=settings.sampling, center=center,
                            center_label=p.optimum_label, radius_theory=None, radius_measured=measured,
                            radius_se=se, window_steps=wsteps, burn_in=0, burn_in_left=0, covariance=None,
                            radius_additive=None, radius_small_lr=None, lr_limit=None, spectral_radius=None,
                            stable=None, note="no quadratic model of this problem: no prediction of the ball")
        th = self.balls.get(settings.batch_size, settings.lr, settings.momentum, settings.sampling, self.drop_last,
                            with_limit=True)
        left = window.burn_in_left(sim.step_count) if window else th.burn_in
        cov = tuple(tuple(float(v) for v in row) for row in th.covariance) \
            if th.covariance is not None and p.small else None
        return BallInfo(label=th.label, sampling=settings.sampling, center=center, center_label=p.optimum_label,
                        radius_theory=th.radius, radius_measured=measured, radius_se=se, window_steps=wsteps,
                        burn_in=th.burn_in, burn_in_left=left, covariance=cov, radius_additive=th.radius_additive,
                        radius_small_lr=th.radius_small_lr, lr_limit=th.lr_limit,
                        spectral_radius=th.spectral_radius, stable=th.stable, note=th.note, kind=th.kind,
                        radius_theory_se=th.radius_se, radius_approx=th.radius_approx, lr_limit_iid=th.lr_limit_iid,
                        lr_limit_se=th.lr_limit_se,
                        radius_iid=th.radius_iid, limit_fraction=th.limit_fraction,
                        **self._rate(sim, th, settings))

    def _rate(self, sim, th, settings: Settings) -> dict:
        """Interpolation: the rate of E|e|^2 per step that replaces the ball, its label and m* (else nothing);
        where a view draws them (``sim.ball_law_curves``) and without momentum, the rates at B = 1, 2, 4, ... and
        N with the lr following the lr scaling in force from the current (B, lr) (None where that lr is
        unstable), computed once per setting."""
        if self.critical_batch is None:
            return {}
        out = dict(rate=th.spectral_radius if th.stable else None,
                   rate_label=interpolation.RATE_LABEL[settings.sampling], critical_batch=self.critical_batch)
        if getattr(sim, "ball_law_curves", False) and settings.momentum == 0.0:
            key = (settings.batch_size, settings.lr, settings.sampling, sim.lr_scaling)
            if key not in self._rates:
                self._rates = {key: tuple(
                    (b, interpolation.rate(self.balls.model, b,
                                           settings.lr * scaling_factor(sim.lr_scaling, b, settings.batch_size),
                                           settings.sampling))
                    for b in sorted(set(curve_batch_sizes(self.n)) | {self.n}))}
            out["rates"] = self._rates[key]
        return out
