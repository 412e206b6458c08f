"""A sweep's tasks of one batch size as one batched run (linear problems in float64).

The tasks of a batch size B (the lr grid x the seeds) are S x L chains (bsim.ensemble.grouped):
chain (s, l) is the task (B, seed s, lr l), with the seed's data and theta_0 and the batches of the
seed's own sampling stream (its Simulation's Sampler, drawn once per step and shared by the seed's L
lrs: the same batches the single task draws). All chains step together, in float64, and each keeps
the single task's stopping rule (bsim.sweep.task): the value checked at every step's parameters, the
first step at or below the target, a divergence, max_steps, the plateau rule at 1024, 2048, ... steps;
its curve and its row come from the same code (``_Run``'s ``result``). A chain that stops is dropped
from the stepping at the next 64-step chunk (with every chain of its lr column and seed row stopped).

What may differ from the task run alone: the last bits. A step here is two bmm over the chains, there
two matrix-vector products; the least-squares train loss checked here is L(theta*) + (1/2) e^T H e
(e = theta - theta*, exact and O(d^2) per chain), there the mean of (1/2)(x.theta - y)^2 over N. The
steps to the target agree unless a loss lies within rounding of the target (tested: identical on the
bundled sweep's tasks); a diverged chain may stop a step or two earlier (here: the first non-finite
parameters or train loss after a step, and the full loss overflows first; there: a non-finite batch
loss before it or parameters after it: steps_run 743 against 745 on the bundled sweep). The row's
losses, noise scales and accuracies at the stop are computed by the single task's functions.

The composition of a run is fixed by the spec (all its lrs and seeds at B), never by which tasks are
left, so a resumed sweep recomputes the same chains and keeps the rows it lacks.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import torch

from bsim.ensemble.grouped import Groups
from bsim.sweep.noise import linear_moments, linear_noise_scales
from bsim.sweep.spec import SweepSpec, Task
from bsim.sweep.task import LINEAR_CHUNK, CURVE_GROWTH, TaskResult, _Curve, _Run, check_interval, plateaued

BATCHED_KINDS = ("linreg", "logreg")


def batchable(spec: SweepSpec) -> bool:
    """Whether the spec's tasks run as batched runs: a linear problem in float64."""
    sc = spec.scenario
    return sc.problem.kind in BATCHED_KINDS and sc.resolved_dtype() == "float64"


def groups_of(tasks: list[Task]) -> list[tuple[Task, ...]]:
    """``tasks`` as batched runs: one per batch size (each run steps all the spec's tasks at that B)."""
    by: dict[int, list[Task]] = {}
    for t in tasks:
        by.setdefault(t.batch_size, []).append(t)
    return [tuple(by[b]) for b in sorted(by)]


class _Chain(_Run):
    """One task's record inside a batched run (its check history, curve, hit and stop); ``result`` is _Run's."""

    def __init__(self, spec: SweepSpec, task: Task, problem, theta0: torch.Tensor, every: int):
        self.spec, self.task, self.p = spec, task, problem
        self.linear, self.every = True, every
        self.curve = _Curve()
        self.values: list[np.ndarray] = []       # the value checked at steps 0, 1, ... (lower is better)
        self.samples = 0
        self.hit = None
        self.stop = ""
        self.target = spec.target_for(problem)
        self.goal = -self.target if spec.on_accuracy else self.target
        self.sim = SimpleNamespace(theta=theta0, step_count=0)

    def kept(self, first: int, end: int, hit: int | None) -> list[int]:
        """The chunk's indices i <= end whose step first + i + 1 the curve keeps (``_Curve``), without adding."""
        out, nk = [], self.curve.next_keep
        for i in range(end + 1):
            s = first + i + 1
            if s >= nk or i == hit:
                out.append(i)
                nk = max(s + 1, math.ceil(s * CURVE_GROWTH))
        return out

    def plateau_at(self, step: int) -> bool:
        """The plateau rule of ``plateaued`` on this chain's values at steps 0..step."""
        v = np.concatenate(self.values)[: step + 1]
        v = np.where(np.isnan(v), np.inf, v)
        half = step // 2
        return plateaued([(0, float(v[: half + 1].min())), (step, float(v[half + 1:].min()))], step, self.goal)


#: the Simulation of each (scenario, seed) this process built last: its problem (data, theta*) is the same
#: at every batch size, so a process that runs several batch sizes builds it once
_SIMS: dict = {}


def _simulation(spec: SweepSpec, batch_size: int, seed: int):
    """A Simulation of the task (batch_size, seed) at step 0 (its sampler fresh from the seed's stream)."""
    from bsim.simulation import Simulation
    key = (spec.scenario_hash(), spec.scenario.device, seed)
    sim = _SIMS.get(key)
    if sim is None:
        if len(_SIMS) >= 64:
            _SIMS.clear()
        sim = _SIMS[key] = Simulation(spec.task_scenario(Task(batch_size, seed, spec.base_lr)), stats=False)
    sim.set_batch_size(batch_size)
    sim.reset()
    return sim


class _Batch:
    """S seeds x L lrs at one batch size, stepped together until every chain has stopped."""

    def __init__(self, spec: SweepSpec, batch_size: int):
        self.spec, self.B = spec, batch_size
        self.seeds, self.lrs = list(spec.seeds), list(spec.lrs_for(batch_size))
        sims = [_simulation(spec, batch_size, s) for s in self.seeds]
        self.problems = [sim.problem for sim in sims]
        self.samplers = [sim.sampler for sim in sims]
        self.batch_size, self.momentum = sims[0].batch_size, sims[0].momentum
        p0 = self.problems[0]
        every = check_interval(p0.kind, p0.n_train, self.batch_size)
        self.chains = [[_Chain(spec, Task(batch_size, s, lr), p, sim.theta0, every) for lr in self.lrs]
                       for s, p, sim in zip(self.seeds, self.problems, sims)]
        self.all = Groups(self.problems)
        dt = p0.X.dtype
        self.theta = torch.stack([sim.theta0 for sim in sims])[:, None, :].expand(-1, len(self.lrs), -1).clone()
        self.velocity = torch.zeros_like(self.theta) if self.momentum else None
        self.lr = torch.tensor(self.lrs, dtype=dt, device=p0.X.device)
        self.rows, self.cols = list(range(len(self.seeds))), list(range(len(self.lrs)))
        self.groups = self.all
        self.quadratic = p0.kind == "linreg" and spec.on == "train"
        if self.quadratic:     # L(theta) = L(theta*) + (1/2) e^T H e, e = theta - theta*
            self.H = torch.stack([linear_moments(p)[3].to(dt) for p in self.problems])
            self.star = torch.stack([p.theta_star for p in self.problems])
            with torch.no_grad():
                self.best = torch.tensor([float(p.train_loss(p.theta_star)) for p in self.problems], dtype=dt)
        self.step = 0
        self.samples = 0

    # ------------------------------------------------------------ checks
    def _values(self, thetas: torch.Tensor) -> torch.Tensor:
        """The value checked for (S', M, d) parameters of the active rows: (S', M), lower is better."""
        rows = torch.tensor(self.rows)
        if self.quadratic:
            e = thetas - self.star[rows][:, None, :]
            q = 0.5 * (torch.bmm(e, self.H[rows]) * e).sum(-1)
            return self.best[rows][:, None] + q
        if self.spec.on_accuracy:
            return -self.groups.accuracies(thetas, self.spec.on.removesuffix("_acc"))
        return self.groups.losses(thetas, self.spec.on)

    def _curve_points(self, buf: torch.Tensor, idx: list[int]) -> dict:
        """(train, test, b_simple, b_noise) arrays (k, S', L') at the chunk's indices ``idx``."""
        th = buf[idx]                                          # (k, S', L', d)
        k, S, L, d = th.shape
        flat = th.permute(1, 0, 2, 3).reshape(S, k * L, d)
        out = {"train": self.groups.losses(flat, "train")}
        out["test"] = self.groups.losses(flat, "test") if self.groups.X_test is not None else None
        bs, bn = [], []
        for j, r in enumerate(self.rows):
            a, b = linear_noise_scales(self.problems[r], flat[j])
            bs.append(a)
            bn.append(b)
        out["b_simple"], out["b_noise"] = torch.stack(bs), torch.stack(bn)
        return {key: None if v is None else v.reshape(S, k, L).permute(1, 0, 2).numpy() for key, v in out.items()}

    # ------------------------------------------------------------- steps
    def start(self) -> None:
        """Step 0 of every chain: one evaluation per seed (its chains share theta_0), as ``_Run.start``."""
        for row in self.chains:
            c0 = row[0]
            theta = c0.sim.theta
            tr, te = c0.losses(theta)
            scales = c0.scales(theta)
            v = c0.checked([theta], [tr], [te])[0]
            for c in row:
                c.curve.add(0, 0, tr, te, scales)
                c.values.append(np.array([v]))
                if v <= c.goal:
                    c.hit, c.stop = (0, 0, theta), "target"

    def run(self) -> None:
        while self._active():
            self._chunk()

    def _active(self) -> bool:
        return any(not c.stop for row in self.chains for c in row)

    def _chunk(self) -> None:
        first, spec = self.step, self.spec
        m = min(LINEAR_CHUNK, spec.max_steps - first)
        S, L = len(self.rows), len(self.cols)
        buf = torch.empty((m, S, L, self.theta.shape[-1]), dtype=self.theta.dtype)
        lr = self.lr[self.cols]
        with torch.no_grad():
            drawn = [self.samplers[r].next_batches(self.batch_size, m) for r in self.rows]
            sizes = [int(b.shape[0]) for b in drawn[0]]          # the same at every seed: one sampler's counters
            if len(set(sizes)) == 1:                              # (m, S', b) at once
                batches = torch.stack([torch.stack(d) for d in drawn], 1)
            else:
                batches = [torch.stack(step) for step in zip(*drawn)]       # m of (S', b)
            cum = np.cumsum(sizes) + self.samples
            self.samples = int(cum[-1])
            self.theta, self.velocity = self.groups.steps(self.theta, self.velocity, batches, lr, self.momentum, buf)
            self.step += m
            values = self._values(buf.permute(1, 0, 2, 3).reshape(S, m * L, -1)).reshape(S, m, L)
            finite = buf.mul(0).sum(-1).eq(0).permute(1, 0, 2) & torch.isfinite(values)
        values, finite = values.numpy(), finite.numpy()
        ends = {}
        for si, r in enumerate(self.rows):
            for li, c_ in enumerate(self.cols):
                c = self.chains[r][c_]
                if c.stop:
                    continue
                col, ok = values[si, :, li], finite[si, :, li]
                nf = int(np.argmin(ok)) if not ok.all() else m
                below = np.nonzero(col[:nf] <= c.goal)[0]
                hit = int(below[0]) if len(below) else None
                end = hit if hit is not None else nf - 1
                ends[(si, li)] = (c, hit, nf, end, col)
        need = sorted({i for (c, hit, nf, end, col) in ends.values() for i in c.kept(first, end, hit)})
        pts = self._curve_points(buf, need) if need else {}
        for (si, li), (c, hit, nf, end, col) in ends.items():
            c.values.append(col[: end + 1])
            for i in c.kept(first, end, hit):
                j = need.index(i)
                te = pts["test"]
                c.curve.add(first + i + 1, int(cum[i]), float(pts["train"][j, si, li]),
                            None if te is None else float(te[j, si, li]),
                            (float(pts["b_simple"][j, si, li]), float(pts["b_noise"][j, si, li])))
            if end >= 0:
                c.samples, c.sim.step_count = int(cum[end]), first + end + 1
                c.sim.theta = buf[end, si, li].clone()
            if hit is not None:
                c.hit = (first + hit + 1, int(cum[hit]), c.sim.theta)
                c.stop = "target"
            elif nf < m:
                c.stop = "diverged"
            elif self.step >= spec.max_steps:
                c.stop = "max_steps"
            elif _Run._milestone(first, self.step) and c.plateau_at(self.step):
                c.stop = "plateau"
        self._compact()

    def _compact(self) -> None:
        """Drop the seeds and lr columns whose chains have all stopped."""
        live = [[not self.chains[r][c].stop for c in self.cols] for r in self.rows]
        keep_r = [i for i, row in enumerate(live) if any(row)]
        keep_c = [j for j in range(len(self.cols)) if any(live[i][j] for i in keep_r)]
        if len(keep_r) == len(self.rows) and len(keep_c) == len(self.cols):
            return
        ri, ci = torch.tensor(keep_r, dtype=torch.long), torch.tensor(keep_c, dtype=torch.long)
        self.theta = self.theta[ri][:, ci].contiguous()
        if self.velocity is not None:
            self.velocity = self.velocity[ri][:, ci].contiguous()
        self.rows = [self.rows[i] for i in keep_r]
        self.cols = [self.cols[j] for j in keep_c]
        if self.rows:
            self.groups = self.all.select(torch.tensor(self.rows, dtype=torch.long))


def run_batch(spec: SweepSpec, tasks: tuple[Task, ...]) -> list[TaskResult]:
    """Run the spec's tasks at the batch size of ``tasks`` as one batched run; the results of ``tasks``."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    batch = _Batch(spec, tasks[0].batch_size)
    batch.start()
    batch.run()
    chains = [c for row in batch.chains for c in row]
    share = (time.perf_counter() - t0) / len(chains)
    wanted = {t.key for t in tasks}
    out = []
    for c in chains:
        if c.task.key in wanted:
            res = c.result(time.perf_counter())
            res.row["wall_s"] = share
            out.append(res)
    return out
