"""One task of a sweep: train from step 0 until the loss reaches the target.

How the target is checked (S = the first step whose parameters have loss <= target):
- linear problems (linreg, logreg): the loss of EVERY step's parameters is
  evaluated, batched: every 64 steps one matrix product X Theta^T over the
  64 stored parameter vectors. S is exact, at the cost of O(N d) per step.
- the LSTM: the full loss is checked every max(1, ceil(ceil(N/B) / 4)) steps
  (four times an epoch); when a check is at or below the target, the stored
  parameters since the previous check are bisected (log2 of that many extra
  evaluations), so S is a step where the loss crosses the target, exact when
  the loss falls monotonically within that quarter epoch.
E = the examples seen in those S steps.
With ``on`` train_acc or test_acc (classifiers), S is the first step whose
parameters classify at least the target fraction right: the problem's own
accuracy method, over the same 64 stored vectors at once (torch.vmap).

A task stops at the target, at a divergence, at ``max_steps``, or on a
plateau: at every doubling of its steps from 1024 on, if the best loss of the
last half closed less than 10% of the gap between the best loss before it and
the target, the task is stopped as "plateau" (an lr whose noise floor is above
the target would otherwise run to max_steps).

A task is deterministic from its seed: the local pool, Ray and an in-process
run give identical rows (but wall_s).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from bsim.stats.interpolation import critical_batch
from bsim.sweep.noise import noise_scales
from bsim.sweep.spec import SweepSpec, Task

LINEAR_CHUNK = 64
CURVE_GROWTH = 1.1       # curve points kept at steps growing by 10%: about 25 per decade
PLATEAU_START = 1024     # the first step count at which a plateau is looked for
PLATEAU_PROGRESS = 0.1   # the fraction of the gap to the target the last half must close


@dataclass
class TaskResult:
    task: Task
    row: dict
    curve: list[tuple] = field(default_factory=list)   # (step, samples, train_loss, test_loss, b_simple, b_noise)


def check_interval(kind: str, n_train: int, batch_size: int) -> int:
    """Steps between target checks: 1 for linear problems (every step, batched), a quarter epoch for the LSTM."""
    if kind in ("linreg", "logreg", "softmax"):
        return 1
    return max(1, math.ceil(math.ceil(n_train / batch_size) / 4))


def batched_loss(problem, thetas: list[torch.Tensor], which: str) -> torch.Tensor | None:
    """Mean loss of each parameter vector on the train or test set (one product for linear problems)."""
    X, y = (problem.X, problem.y) if which == "train" else (problem.X_test, problem.y_test)
    if X is None or X.shape[0] == 0:
        return None
    with torch.no_grad():
        if hasattr(problem, "losses_many"):
            return problem.losses_many(torch.stack(thetas), X, y)
        return torch.stack([problem.loss(t, X, y) for t in thetas])


def batched_accuracy(problem, thetas: list[torch.Tensor], which: str) -> torch.Tensor | None:
    """The fraction of the train or test set each parameter vector classifies right: the problem's own
    ``accuracy``, vectorised over the vectors with torch.vmap (a loop where vmap cannot trace it).
    None: no such set, or the problem is not a classifier."""
    X, y = (problem.X, problem.y) if which == "train" else (problem.X_test, problem.y_test)
    if X is None or X.shape[0] == 0:
        return None
    with torch.no_grad():
        if problem.accuracy(thetas[0], X, y) is None:
            return None
        try:
            return torch.vmap(lambda theta: problem.accuracy(theta, X, y))(torch.stack(thetas))
        except RuntimeError:
            return torch.stack([problem.accuracy(t, X, y) for t in thetas])


def plateaued(history: list[tuple[int, float]], step: int, target: float) -> bool:
    """The best loss of steps (step/2, step] closed < PLATEAU_PROGRESS of the gap left after steps <= step/2."""
    half = step // 2
    before = min((v for s, v in history if s <= half), default=math.inf)
    recent = min((v for s, v in history if half < s <= step), default=math.inf)
    if not math.isfinite(before):
        return not math.isfinite(recent)
    return before - recent < PLATEAU_PROGRESS * (before - target)


class _Curve:
    """Keeps points at geometrically growing steps (and the last)."""

    def __init__(self):
        self.points: list[tuple] = []
        self.next_keep = 0

    def wants(self, step: int) -> bool:
        return step >= self.next_keep

    def add(self, step, samples, train, test, scales=(None, None)) -> None:
        if self.points and self.points[-1][0] == step:
            return
        self.points.append((step, samples, train, test, *scales))
        self.next_keep = max(step + 1, math.ceil(step * CURVE_GROWTH))


class _Run:
    """The training loop of one task, its checks and its record."""

    def __init__(self, spec: SweepSpec, task: Task):
        from bsim.simulation import Simulation
        self.spec, self.task = spec, task
        self.sim = Simulation(spec.task_scenario(task), stats=False)
        self.p = self.sim.problem
        self.linear = self.p.kind in ("linreg", "logreg", "softmax")
        self.every = check_interval(self.p.kind, self.p.n_train, self.sim.batch_size)
        self.curve = _Curve()
        # (step, the value checked): the loss on the target's set, or minus the accuracy (lower is better
        # either way, so that the target check and the plateau rule read the same)
        self.history: list[tuple[int, float]] = []
        self.samples = 0
        self.hit: tuple[int, int, torch.Tensor] | None = None
        self.stop = ""
        self.target = spec.target_for(self.p)
        self.goal = -self.target if spec.on_accuracy else self.target     # reached when the value is <= goal

    def losses(self, theta) -> tuple[float, float | None]:
        with torch.no_grad():
            tr, te = self.p.train_loss(theta), self.p.test_loss(theta)
        return float(tr), None if te is None else float(te)

    def scales(self, theta) -> tuple:
        return noise_scales(self.p, theta) if self.linear else (None, None)

    def checked(self, thetas, tr, te) -> list[float]:
        """The values the target is checked on (lower is better): the losses ``tr`` or ``te`` already
        computed for ``thetas``, or minus their accuracies."""
        if self.spec.on_accuracy:
            return [-v for v in batched_accuracy(self.p, thetas, self.spec.on.removesuffix("_acc")).tolist()]
        return tr if self.spec.on == "train" else te

    def value(self, theta) -> float:
        """The value checked for one parameter vector (one evaluation, on the target's set only)."""
        if self.spec.on_accuracy:
            return -float(batched_accuracy(self.p, [theta], self.spec.on.removesuffix("_acc"))[0])
        return float(batched_loss(self.p, [theta], self.spec.on)[0])

    def start(self) -> None:
        tr, te = self.losses(self.sim.theta)
        self.curve.add(0, 0, tr, te, self.scales(self.sim.theta))
        v = self.checked([self.sim.theta], [tr], [te])[0]
        self.history.append((0, v))
        if v <= self.goal:
            self.hit = (0, 0, self.sim.theta)

    def chunk(self) -> bool:
        """Take up to one chunk of steps and check them; False when the task is over."""
        sim, spec = self.sim, self.spec
        size = LINEAR_CHUNK if self.linear else self.every
        first = sim.step_count                  # thetas[i]: the parameters after step first + i + 1
        thetas, cum = [], []
        for _ in range(min(size, spec.max_steps - sim.step_count)):
            if not sim.step():
                break
            self.samples += sim.last_batch_size
            thetas.append(sim.theta)
            cum.append(self.samples)
        if thetas:
            (self._check_linear if self.linear else self._check_sparse)(first, thetas, cum)
        if self.hit:
            self.stop = "target"
        elif sim.diverged:
            self.stop = "diverged"
        elif sim.step_count >= spec.max_steps:
            self.stop = "max_steps"
        elif self._milestone(first, sim.step_count) and plateaued(self.history, sim.step_count, self.goal):
            self.stop = "plateau"
        return not self.stop

    @staticmethod
    def _milestone(before: int, after: int) -> bool:
        """A doubling of the step count (PLATEAU_START * 2^k) was passed in (before, after]."""
        m = PLATEAU_START
        while m <= after:
            if m > before:
                return True
            m *= 2
        return False

    def _check_linear(self, first, thetas, cum) -> None:
        tr = batched_loss(self.p, thetas, "train").tolist()
        te_t = batched_loss(self.p, thetas, "test")
        te = te_t.tolist() if te_t is not None else [None] * len(thetas)
        on = self.checked(thetas, tr, te)
        hit = next((i for i, v in enumerate(on) if v <= self.goal), None)
        for i in range(len(thetas) if hit is None else hit + 1):
            self.history.append((first + i + 1, on[i]))
            if self.curve.wants(first + i + 1) or i == hit:
                self.curve.add(first + i + 1, cum[i], tr[i], te[i], self.scales(thetas[i]))
        if hit is not None:
            self.hit = (first + hit + 1, cum[hit], thetas[hit])

    def _check_sparse(self, first, thetas, cum) -> None:
        tr, te = self.losses(thetas[-1])
        v, step = self.checked(thetas[-1:], [tr], [te])[0], first + len(thetas)
        if v <= self.goal:
            lo, hi = -1, len(thetas) - 1     # above the goal at lo (the previous check), at or below at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.value(thetas[mid]) <= self.goal:
                    hi = mid
                else:
                    lo = mid
            self.hit = (first + hi + 1, cum[hi], thetas[hi])
            tr, te = self.losses(thetas[hi])
            self.curve.add(first + hi + 1, cum[hi], tr, te)
            self.history.append((first + hi + 1, self.checked([thetas[hi]], [tr], [te])[0]))
            return
        self.history.append((step, v))
        if self.curve.wants(step):
            self.curve.add(step, cum[-1], tr, te)

    def accuracy(self, theta, which: str) -> float | None:
        acc = batched_accuracy(self.p, [theta], which)
        return None if acc is None else float(acc[0])

    def result(self, t0: float) -> TaskResult:
        reached = self.hit is not None
        diverged = self.stop == "diverged"
        theta = self.hit[2] if reached else self.sim.theta
        tr, te = self.losses(theta)
        steps_run = self.hit[0] if reached else self.sim.step_count
        bs, bn = (None, None) if diverged else noise_scales(self.p, theta)
        if not reached:
            self.curve.add(steps_run, self.samples, tr, te, (bs, bn))
        row = {
            "batch_size": self.task.batch_size, "seed": self.task.seed, "lr": self.task.lr,
            "reached": reached, "diverged": diverged, "stop": self.stop,
            "steps": self.hit[0] if reached else None, "samples": self.hit[1] if reached else None,
            "steps_run": steps_run, "target_loss": None if self.spec.on_accuracy else self.target,
            "train_loss": tr, "test_loss": te,
            "b_simple": bs, "b_noise": bn, "check_every": self.every, "wall_s": time.perf_counter() - t0,
            "train_acc": self.accuracy(theta, "train"), "test_acc": self.accuracy(theta, "test"),
            "m_star": critical_batch(self.p.X64) if getattr(self.p, "interpolating", False) else None,
        }
        # NaN (a diverged run's leftovers) is written as an empty cell, so rows compare equal
        row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        return TaskResult(self.task, row, self.curve.points)


def run_task(spec: SweepSpec, task: Task) -> TaskResult:
    """Train one (batch size, seed, lr) until the target, a divergence, a plateau or max_steps."""
    if spec.on == "escape":     # a landscape: steps until a fraction of the chains escaped
        from bsim.sweep.escape import run_escape_task
        return TaskResult(task, *run_escape_task(spec, task))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run = _Run(spec, task)
    run.start()
    if not run.hit:
        while run.chunk():
            pass
    else:
        run.stop = "target"
    return run.result(t0)
