"""NoiseStats: the gradient-noise statistics and the epsilon-ball of a running Simulation.

It is an observer of the simulation (called after every step) and a frame
hook (called when a view reads a frame). Per step it only keeps references
to the step's parameters and batch gradient (and, for the LSTM, takes a
half-batch gradient, and the full gradient every K steps): no host sync.
Every ``buffer`` steps, and at frame time, the buffered steps are processed
together on the device (the full gradient G and tr(Sigma) at every step's
parameters, exactly: ``fullgrad``); at frame time the results come to the
host in one transfer and are folded into the averages (``window``).

Per step (at the parameters theta_t the step started from, g_B its batch gradient):
  grad_noise = |g_B - G|^2, grad_noise_theory = c_B tr(Sigma) for the sampling
  in force and the step's own batch size (a short last batch included),
  noise_scale = tr(Sigma) / |G|^2, cos(g_B, G), |G|.
LSTM: tr(Sigma) and |G|^2 come from the two-batch estimator (B and B/2 of
the same batch, ``twobatch``); |g_B - G|^2 enters the averages every K steps
(``full_grad_every``) and is computed for every frame's own step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bsim.problems.base import PROBE_STREAM, stream_seed
from bsim.stats.ball import BallCache, quad_model
from bsim.stats.cfactor import VarianceTheory, c_factor, temperature
from bsim.stats.fullgrad import LinearFullPass, full_grad_engine, stats_dtype
from bsim.stats.info import BallInfo, ProbeResult, StatsInfo, VariancePoint
from bsim.stats.probe import run_probe, vec
from bsim.stats.twobatch import TwoBatchAverage, half_batch_grad
from bsim.stats.window import BallWindow, VarianceByBatchSize

#: LSTM: the two-batch estimate (a half-batch gradient) every this many steps
LSTM_STRIDE = 8
#: LSTM: the full gradient (N examples, ~N/B steps' worth of work) every this many steps (a multiple of the stride)
LSTM_FULL_GRAD_EVERY = 400
#: LSTM: horizon (steps) of the running average the spread is measured around
SPREAD_HORIZON = 200
#: LSTM: horizon (steps) of the two-batch averages of tr(Sigma) and |G|^2
TWO_BATCH_HORIZON = 500
#: vectors longer than this are not copied into frames
SMALL = 8


def _vec(t) -> tuple[float, ...] | None:
    return vec(t)


class NoiseStats:
    """Attach with ``NoiseStats(sim)`` (Simulation does it unless stats=False)."""

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

    # ---------------------------------------------------------------- set-up
    def _setup(self) -> None:
        p = self.sim.problem
        self.problem, self.n = p, p.n_train
        self.device, self.dtype = p.device, stats_dtype(p.device)
        self.linear = hasattr(p, "per_example_grads") and hasattr(p, "X64")
        if self.linear:
            self.engine = full_grad_engine(p)
            model = quad_model(p)
            self.balls = BallCache(model) if model is not None else None
            # an O(N d) pass per step: on big data sets only every K-th step enters (K = 1 up to N d = 65536)
            cost = self.n * p.n_params if isinstance(self.engine, LinearFullPass) else 0
            self.full_every = int(self._every_arg or max(1, math.ceil(cost / 65536)))
            self.stride = 1
            self.cap = min(self._buffer_arg, max(8, 2 ** 16 // max(self.n, 1)))  # the K x N pass stays in cache
        else:
            self.engine, self.balls = None, None
            self.stride = int(self._stride_arg or LSTM_STRIDE)
            self.full_every = int(self._every_arg or LSTM_FULL_GRAD_EVERY)
            if self.full_every % self.stride:
                raise ValueError(f"full_grad_every {self.full_every} is not a multiple of the stride {self.stride}")
            self.cap = self._buffer_arg
        self._clear()

    def _clear(self) -> None:
        """Forget every average (a reset or a problem switch)."""
        self._thetas, self._grads, self._bsz, self._small, self._fulls, self._steps = [], [], [], [], [], []
        self._pending: list = []
        self._segments: list[tuple[int, tuple]] = []
        self._key = None
        self._next_step: int | None = None
        self._window: BallWindow | None = None
        self._window_start = -1
        self.by_b = VarianceByBatchSize()
        self.two = TwoBatchAverage(TWO_BATCH_HORIZON)
        self._ema: torch.Tensor | None = None
        self._last: dict | None = None
        self._frame_full: tuple[int, torch.Tensor] | None = None
        self.probe_result: ProbeResult | None = None
        self._probe_gen = torch.Generator(device=self.device)
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
        key = (sim.batch_size, sim.last_lr, sim.momentum, sim.sampling)
        if key != self._key:
            self._key = key
            self._segments.append((step, key))
        if self.linear and self.full_every > 1 and step % self.full_every:
            return
        if not self.linear and step % self.stride:
            return  # the LSTM's statistics cost a half-batch gradient: every `stride` steps
        self._steps.append(step)
        self._thetas.append(sim.last_theta)
        self._grads.append(sim.last_grad)
        self._bsz.append(sim.last_batch_size)
        if not self.linear:
            b = sim.last_batch_size
            self._small.append(half_batch_grad(self.problem, sim.last_theta, sim.last_idx) if b >= 2 else None)
            if step % self.full_every == 0:
                self._fulls.append((len(self._thetas) - 1, self.problem.full_grad(sim.last_theta)))
        if len(self._thetas) >= self.cap:
            self._flush()

    # --------------------------------------------------- device-side batches
    def _flush(self) -> None:
        if not self._thetas:
            return
        with torch.no_grad():
            chunk = self._flush_linear() if self.linear else self._flush_lstm()
        chunk["steps"] = np.asarray(self._steps, dtype=np.int64)
        chunk["bsz"] = np.asarray(self._bsz, dtype=np.int64)
        self._pending.append(chunk)
        self._thetas, self._grads, self._bsz, self._small, self._fulls, self._steps = [], [], [], [], [], []

    def _flush_linear(self) -> dict:
        Th = torch.stack(self._thetas)
        Gr = torch.stack(self._grads).to(self.dtype)
        G, tr, E = self.engine(Th)
        D = Gr - G
        parts = [Gr * Gr, Gr * G, G * G, D * D] + ([E * E] if E is not None else [])
        cols = torch.stack(parts).sum(-1)
        vals = torch.cat([cols, tr[None]])          # rows: g2, gG, G2, noise, [d2], trace
        small = Th.shape[1] <= SMALL
        return {"vals": vals, "has_d2": E is not None,
                "G_last": G[-1] if small else None, "g_last": Gr[-1] if small else None}

    def _flush_lstm(self) -> dict:
        Gb = torch.stack(self._grads)
        nb = (Gb * Gb).sum(1)
        has = [i for i, g in enumerate(self._small) if g is not None]
        ns = (torch.stack([self._small[i] for i in has]) ** 2).sum(1) if has else Gb.new_zeros(0)
        Th = torch.stack(self._thetas).to(self.dtype)
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
        return {"nb": nb, "ns": ns, "has": np.asarray(has, dtype=np.int64), "d2": d2, "full": full,
                "pos": np.asarray(pos, dtype=np.int64)}

    # ----------------------------------------------------- host-side folding
    def _drain(self) -> None:
        """Bring the processed steps to the host (one transfer) and fold them into the averages."""
        self._flush()
        if not self._pending:
            return
        tensors = [t for ch in self._pending for k, t in sorted(ch.items())
                   if isinstance(t, torch.Tensor) and k not in ("G_last", "g_last")]
        flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors]).cpu().numpy() if tensors else None
        off = 0
        for ch in self._pending:
            for k in sorted(ch):
                t = ch[k]
                if isinstance(t, torch.Tensor) and k not in ("G_last", "g_last"):
                    ch[k] = flat[off:off + t.numel()].reshape(tuple(t.shape))
                    off += t.numel()
            self._fold(ch)
        self._pending = []

    def _segment_ranges(self, steps: np.ndarray):
        """(lo, hi, key, segment start) over runs of a chunk's (sorted) steps in one settings segment."""
        starts = np.array([s for s, _ in self._segments])
        seg = np.maximum(np.searchsorted(starts, steps, side="right") - 1, 0)
        lo = 0
        while lo < len(steps):
            hi = lo + int(np.searchsorted(seg[lo:], seg[lo], side="right"))
            seg_start, key = self._segments[int(seg[lo])]
            yield lo, hi, key, seg_start
            lo = hi

    def _window_for(self, seg_start: int, key: tuple) -> BallWindow:
        if self._window is None or self._window_start != seg_start:
            B, lr, m, samp = key
            if self.balls is not None:
                th = self.balls.get(B, lr, m, samp)
                burn, block = th.burn_in, max(16, int(math.ceil(5 * th.relaxation_steps)))
            else:
                burn, block = 3 * SPREAD_HORIZON, 5 * SPREAD_HORIZON
            self._window, self._window_start = BallWindow(seg_start, burn, block), seg_start
        return self._window

    def _fold(self, ch: dict) -> None:
        steps, bsz = ch["steps"], ch["bsz"]
        k = len(bsz)
        if self.linear:
            v = ch["vals"]
            g2, gG, G2, noise, tr = v[0], v[1], v[2], v[3], v[-1]
            d2 = v[4] if ch["has_d2"] else None
            for lo, hi, key, seg_start in self._segment_ranges(steps):
                samp = key[3]
                c = np.array([c_factor(self.n, int(b), samp) for b in bsz[lo:hi]])
                self.by_b.add(samp, bsz[lo:hi], noise[lo:hi], c * tr[lo:hi])
                if d2 is not None:
                    self._window_for(seg_start, key).add(steps[lo:hi], d2[lo:hi])
            j = k - 1
            self._last = dict(step=int(steps[j]), g2=g2[j], gG=gG[j], G2=G2[j], noise=noise[j], trace=tr[j],
                              bsz=int(bsz[j]), sampling=self._key_at(int(steps[j]))[3],
                              G=_vec(ch["G_last"]), g=_vec(ch["g_last"]))
            return
        # LSTM
        has, ns, nb, full, pos = ch["has"], ch["ns"], ch["nb"], ch["full"], ch["pos"]
        samp_of = np.array([self._key_at(int(s))[3] for s in steps])
        if len(has):
            cs = np.array([c_factor(self.n, int(b) // 2, s) for b, s in zip(bsz[has], samp_of[has])])
            cb = np.array([c_factor(self.n, int(b), s) for b, s in zip(bsz[has], samp_of[has])])
            self.two.update(ns, nb[has], cs, cb)
        tr = self.two.trace_sigma
        for j, p in enumerate(pos):
            samp = str(samp_of[p])
            theory = c_factor(self.n, int(bsz[p]), samp) * tr if tr is not None else math.nan
            self.by_b.add(samp, bsz[p:p + 1], full[0, j:j + 1], np.array([theory]))
        for lo, hi, key, seg_start in self._segment_ranges(steps):
            self._window_for(seg_start, key).add(steps[lo:hi], ch["d2"][lo:hi])

    def _key_at(self, step: int) -> tuple:
        starts = [s for s, _ in self._segments]
        return self._segments[max(0, int(np.searchsorted(starts, step, side="right")) - 1)][1]

    # ----------------------------------------------------------------- frame
    def fill(self, sim, f) -> None:
        """Fill a frame: the contract columns, the extra CSV columns and frame.extra."""
        self._sync_run()
        self._drain()
        B, lr, m, samp = sim.batch_size, sim.lr, sim.momentum, sim.sampling
        f.temperature = temperature(lr, self.n, B, m)
        f.full_grad_every = self.full_every
        row = self._row(sim) if (sim.step_count > 0 and sim.last_grad is not None) else None
        trace = G2 = g_full = g_batch = None
        if row is not None:
            trace, G2, g_full, g_batch = row["trace"], row["G2"], row["G"], row["g"]
            f.full_grad_norm = math.sqrt(max(G2, 0.0))
            den = math.sqrt(max(row["g2"], 0.0)) * f.full_grad_norm
            f.cos_to_full = row["gG"] / den if den > 0 else None
            f.grad_noise = row["noise"]
            samp_last = self._key[3] if self._key else samp      # the sampling of the step just taken
            cb_last = c_factor(self.n, sim.last_batch_size, samp_last)
            f.grad_noise_theory = cb_last * trace if trace is not None else None
            if self.linear:
                f.noise_scale = trace / G2 if G2 > 0 else None
            else:
                f.noise_scale = self.two.noise_scale
            f.trace_sigma = trace
        ball = self._ball_info(sim, (B, lr, m, samp))
        f.ball_radius_theory = ball.radius_theory
        f.ball_radius = ball.radius_measured
        f.extra["ball"] = ball
        f.extra["stats"] = self._stats_info(sim, trace, G2, f.temperature, g_full, g_batch)
        if self.probe_result is not None:
            f.extra["probe"] = self.probe_result

    def _row(self, sim) -> dict:
        """The quantities of the step just taken: from the last flush when it covered it, else computed now."""
        last = self._last
        if self.linear and last is not None and last["step"] == sim.step_count:
            return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in last.items()}
        with torch.no_grad():
            g = sim.last_grad.to(self.dtype)
            if self.linear:
                G, tr, _ = self.engine(sim.last_theta[None])
                G, trace = G[0], float(tr[0])
            else:
                G, trace = self._frame_full_grad(sim).to(self.dtype), self.two.trace_sigma
            noise, gG, g2, G2 = torch.stack([((g - G) ** 2).sum(), (g * G).sum(), (g * g).sum(), (G * G).sum()]).tolist()
        small = self.linear and self.problem.n_params <= SMALL
        return dict(step=sim.step_count, noise=noise, gG=gG, g2=g2, G2=G2, trace=trace,
                    G=_vec(G) if small else None, g=_vec(g) if small else None)

    def _frame_full_grad(self, sim) -> torch.Tensor:
        if self._frame_full is None or self._frame_full[0] != sim.step_count:
            with torch.no_grad():
                self._frame_full = (sim.step_count, self.problem.full_grad(sim.last_theta))
        return self._frame_full[1]

    def _stats_info(self, sim, trace, G2, temp, g_full, g_batch) -> StatsInfo:
        B, samp = sim.batch_size, sim.sampling
        pts = tuple(VariancePoint(b, samp, n, mean, se, th) for b, n, mean, se, th in self.by_b.points(samp))
        if self.linear:
            label = "exact: all N per-example gradients (closed form)"
            ns = trace / G2 if (trace is not None and G2) else None
            note = ""
        else:
            label = (f"two-batch estimate (B and B/2 of the batch every {self.stride} steps), "
                     f"averaged over ~{TWO_BATCH_HORIZON} estimates")
            ns = self.two.noise_scale
            note = (f"the full gradient is computed every {self.full_every} steps (and at every frame's own step); "
                    f"grad_noise averages use those steps")
        if samp == "shuffle":
            note = (note + "; " if note else "") + "shuffle: c_B of B distinct examples, (N-B)/(B(N-1)), at fixed parameters"
        return StatsInfo(
            trace_sigma=trace, trace_sigma_label=label, full_grad_norm2=G2, noise_scale=ns, temperature=temp,
            c_b=c_factor(self.n, B, samp), batch_size=B, sampling=samp, n_train=self.n,
            variance_theory=VarianceTheory(trace, self.n, samp) if trace is not None else None,
            variance_measured=pts, full_grad_every=self.full_every, note=note,
            full_grad=g_full, batch_grad=g_batch)

    def _ball_info(self, sim, key) -> BallInfo:
        B, lr, m, samp = key
        win = self._window if (self._key == key and self._window is not None
                               and self._segments and self._window_start == self._segments[-1][0]) else None
        measured = win.radius if win else None
        se = win.radius_se if win else None
        wsteps = win.count if win else 0
        p = self.problem
        if self.balls is not None:
            th = self.balls.get(B, lr, m, samp)
            burn = th.burn_in
            left = win.burn_in_left(sim.step_count) if win else burn
            cov = tuple(tuple(float(v) for v in row) for row in th.covariance) \
                if th.covariance is not None and th.covariance.shape[0] <= SMALL else None
            center = _vec(p.theta_star) if p.n_params <= SMALL else None
            return BallInfo(label=th.label, sampling=samp, center=center, center_label=p.optimum_label,
                            radius_theory=th.radius, radius_measured=measured, radius_se=se, window_steps=wsteps,
                            burn_in=burn, burn_in_left=left, covariance=cov, radius_additive=th.radius_additive,
                            radius_small_lr=th.radius_small_lr, lr_limit=th.lr_limit,
                            spectral_radius=th.spectral_radius, stable=th.stable, note=th.note)
        burn = 3 * SPREAD_HORIZON
        left = win.burn_in_left(sim.step_count) if win else burn
        center = _vec(self._ema) if (self._ema is not None and p.n_params <= SMALL) else None
        label = f"spread around the running average of the iterates (EMA over {SPREAD_HORIZON} steps)"
        return BallInfo(label=label, sampling=samp, center=center,
                        center_label=f"running average of the iterates (EMA over {SPREAD_HORIZON} steps)",
                        radius_theory=None, radius_measured=measured, radius_se=se, window_steps=wsteps,
                        burn_in=burn, burn_in_left=left, covariance=None, radius_additive=None,
                        radius_small_lr=None, lr_limit=None, spectral_radius=None, stable=None,
                        note="no known optimum (non-convex): no prediction of the ball, only the measured spread")

    # ----------------------------------------------------------------- probe
    def probe(self, batches: int = 32) -> ProbeResult:
        """K fresh batches at the current parameters from the PROBE stream (``bsim.stats.probe``);
        later frames carry the result in extra["probe"]."""
        self._sync_run()
        self.probe_result = run_probe(self, batches)
        return self.probe_result

    def clear_probe(self) -> None:
        self.probe_result = None
