"""The landscapes' strategy: the sampled one, with tr(Sigma) exact instead of the two-batch estimate.

A landscape has one or two parameters and N per-example losses whose gradients are cheap
(``LandscapeProblem.grad_and_trace_many``), so tr(Sigma) = (1/N) sum_i |g_i - G|^2 is computed
exactly at each full-gradient step and at every frame's step. For the tilted wells it is
d sigma_b^2 at every theta (g_i = grad U + b_i); the two-batch estimate, a difference of two
noisy squared norms, scattered around it and went below 0 at B = 4. Everything else (the spread
around the running average, no predicted ball) is the sampled strategy's.
"""

from __future__ import annotations

import numpy as np
import torch

from bsim.stats.exact import NOISE_SCALE_WINDOW
from bsim.stats.sampled import SampledChunk, SampledNoise
from bsim.stats.strategy import StepQuantities

#: the full gradient and the exact tr(Sigma) every this many steps (N d numbers each: cheap)
LANDSCAPE_FULL_EVERY = 8


class LandscapeNoise(SampledNoise):
    """Gradient noise on a landscape: G and tr(Sigma) exact (all N per-example gradients) every
    LANDSCAPE_FULL_EVERY steps and at each frame's step; no half-batch gradients."""

    def __init__(self, problem, full_grad_every: int | None, buffer: int):
        every = int(full_grad_every or LANDSCAPE_FULL_EVERY)
        super().__init__(problem, every, every, buffer)
        self.trace_sigma_label = "exact: all N per-example gradients at the step's parameters"
        self.note = f"G and tr(Sigma) exact every {self.full_every} steps (and at every frame's own step)"

    def clear(self) -> None:
        super().clear()
        self._traces: list[torch.Tensor] = []
        self._recent = np.zeros((0, 2))        # (tr Sigma, |G|^2) at the last NOISE_SCALE_WINDOW full steps

    def exact(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G (d,), tr Sigma (scalar tensor)) at theta, in the statistics' dtype."""
        with torch.no_grad():
            G, tr = self.problem.grad_and_trace_many(theta.to(self.problem.dtype)[None])
        return G[0].to(self.dtype), tr[0].to(self.dtype)

    def record(self, sim, step: int, index: int) -> None:
        self._small.append(None)                 # no two-batch estimate: tr(Sigma) is exact
        if step % self.full_every == 0:
            G, tr = self.exact(sim.last_theta)
            self._fulls.append((index, G))
            self._traces.append(tr)

    def flush(self, steps, thetas, grads, batch_sizes) -> SampledChunk:
        traces, self._traces = self._traces, []
        ch = super().flush(steps, thetas, grads, batch_sizes)
        ch.full_trace = [float(t) for t in traces]
        return ch

    def full_traces(self, ch: SampledChunk) -> list[float | None]:
        traces = getattr(ch, "full_trace", [])
        G2 = np.asarray(ch.full[2], dtype=float) if len(ch.full_at) else np.zeros(0)
        if len(traces):
            self._recent = np.concatenate([self._recent, np.stack([traces, G2], 1)])[-NOISE_SCALE_WINDOW:]
        return list(traces)

    def step_quantities(self, sim) -> StepQuantities:
        """The step just taken: G and tr(Sigma) exact at its parameters."""
        with torch.no_grad():
            g = sim.last_grad.to(self.dtype)
            G, tr = self.exact(sim.last_theta)
            noise, gG, g2, G2 = torch.stack([((g - G) ** 2).sum(), (g * G).sum(), (g * g).sum(), (G * G).sum()]).tolist()
        small = self.problem.small
        return StepQuantities(step=sim.step_count, grad_noise=noise, dot=gG, batch_norm2=g2, full_norm2=G2,
                              trace_sigma=float(tr), full_grad=tuple(G.tolist()) if small else None,
                              batch_grad=tuple(g.tolist()) if small else None)

    def noise_scale(self, q: StepQuantities) -> float | None:
        """B_simple = tr(Sigma) / |G|^2 at the step, exact."""
        return q.trace_sigma / q.full_norm2 if q.trace_sigma is not None and q.full_norm2 > 0 else None

    def noise_scale_smoothed(self) -> tuple[float | None, int]:
        """B_simple as mean tr(Sigma) / mean |G|^2 over the last NOISE_SCALE_WINDOW full-gradient steps."""
        rec = self._recent[np.isfinite(self._recent).all(1)]
        if len(rec) == 0:
            return None, 0
        tr_mean, g2_mean = rec.mean(0)
        return (float(tr_mean / g2_mean) if g2_mean > 0 else None), len(rec) * self.full_every

    def full_grad_and_trace(self, theta: torch.Tensor) -> tuple[torch.Tensor, float | None]:
        G, tr = self.exact(theta)
        return G, float(tr)
