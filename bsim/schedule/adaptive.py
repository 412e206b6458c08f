"""The adaptive batch size: grow B when the batch gradient's noise dominates the batch gradient.

Norm test (Byrd, Chin, Nocedal & Wu 2012): grow when the estimated E|g_B - G|^2 > theta^2 |g_B|^2.
Inner-product test (Bollapragada, Byrd & Nocedal 2018): grow when the estimated
Var(g_i . g_B) / B > theta^2 |g_B|^4 (only the noise along g_B counts).

Both variances come from the batch's own per-example gradients (``bsim.stats.perexample``):
E|g_B - G|^2 = c_B tr(Sigma), with c_B = (N - B) / (B (N - 1)) for B distinct examples and 1/B with
replacement, and tr(Sigma) from the within-batch estimate (unbiased); the inner product's variance
alike, on the scalars g_i . g_B. Numerator and denominator are each averaged over ``window`` steps at
one batch size before their ratio is taken (one step's ratio is too noisy to act on); the statistic

    batch_test = mean(noise) / (theta^2 mean(|g_B|^2))     (inner product: |g_B|^4)

is read once a window is whole: above 1, B grows by ``factor`` (up to ``max``, at most N) before the
next step. It never shrinks B.
"""

from __future__ import annotations

import math

import torch

from bsim.stats.cfactor import c_factor
from bsim.stats.perexample import per_example_grads, within_batch_trace

#: defaults of [schedule.adaptive]
DEFAULTS = {"test": "norm", "theta": 1.0, "factor": 2.0, "window": 16}
#: what each test compares, as the screen shows it
LABELS = {"norm": "norm test", "inner_product": "inner-product test"}


class AdaptiveBatch:
    """Owns the test's running sums over the current window and its last value; reads the simulation's
    last step (its parameters, batch and gradient), never changes it (``grown_to`` says what B to set)."""

    def __init__(self, spec: dict, n_train: int):
        opts = {**DEFAULTS, **spec}
        self.test, self.theta, self.factor = opts["test"], float(opts["theta"]), float(opts["factor"])
        self.window = int(opts["window"])
        self.max = min(int(opts.get("max", n_train)), n_train)
        self.value: float | None = None      # batch_test at the last whole window (None before one)
        self._restart(None)

    def _restart(self, batch_size: int | None) -> None:
        self._b, self._n = batch_size, 0
        self._noise = self._signal = None

    def observe(self, sim) -> None:
        """Add the step just taken to the window (a change of B since starts a new one)."""
        if sim.batch_size != self._b:
            self._restart(sim.batch_size)
        idx = sim.last_idx
        b = int(idx.shape[0])
        if b < 2:       # one example tells no variance
            return
        with torch.no_grad():
            g = per_example_grads(sim.problem, sim.last_theta, idx)
            gb = g.mean(dim=0)
            c = c_factor(sim.n_train, b, sim.sampling)
            if self.test == "norm":
                noise = c * within_batch_trace(g, sim.n_train, sim.sampling)
                signal = gb.dot(gb)
            else:
                noise = c * within_batch_trace((g @ gb)[:, None], sim.n_train, sim.sampling)
                signal = gb.dot(gb) ** 2
        self._noise = noise if self._noise is None else self._noise + noise
        self._signal = signal if self._signal is None else self._signal + signal
        self._n += 1

    def grown_to(self, batch_size: int) -> int | None:
        """At a whole window: its statistic becomes ``value``; the batch size to grow to when it is above 1
        (None when B changed since the window began: a replay's recorded growth, a user's change)."""
        if self._n < self.window:
            return None
        noise, signal, b = float(self._noise), float(self._signal), self._b
        self._restart(b)
        self.value = noise / (self.theta ** 2 * signal) if signal > 0 else math.inf
        if self.value <= 1 or batch_size != b or batch_size >= self.max:
            return None
        return min(self.max, max(batch_size + 1, math.ceil(batch_size * self.factor)))

    def describe(self) -> str:
        """'norm test, theta 0.5' (the screen's label of batch_test)."""
        return f"{LABELS[self.test]}, theta {self.theta:g}"
