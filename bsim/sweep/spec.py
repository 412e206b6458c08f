"""What a sweep is: a scenario, batch sizes, seeds, a target, an lr rule; and its tasks.

A task is one (batch size, seed, lr): train the scenario with that seed (its
data, initial parameters and sampling all come from it) from step 0 until the
loss reaches the target, or ``max_steps``. The target is a loss, or
``opt+EPS``: EPS above the loss at theta* of that seed's data (linear
problems), so that every seed faces the same excess loss; or, with ``on``
train_acc or test_acc (classifiers), an accuracy to reach (>=); with ``on`` escape
(landscapes), the fraction of the chains that left the starting basin (bsim.sweep.escape). The lr of a task follows the rule:

- none, linear, sqrt: lr = lr0 * 1, B / B0 or sqrt(B / B0) (bsim.lrscaling, the rule the app's lr scaling uses)
- tuned:  every lr of a grid (default lr0 * 2^k, k = -3..3); the fit keeps, for
  each B, the lr that reaches the target in the fewest steps (Shallue et al. 2018)

where lr0 and B0 are the scenario's lr and batch size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from bsim.lrscaling import LR_SCALINGS, scaled_lr
from bsim.scenario import Scenario, scenario_to_toml

DEFAULT_GRID_EXPONENTS = tuple(range(-3, 4))
LR_RULES = LR_SCALINGS + ("tuned",)         # how a task's lr follows B (above)
ACCURACY_ON = ("train_acc", "test_acc")     # targets that are an accuracy (the problem's accuracy method)
TARGET_ON = ("train", "test") + ACCURACY_ON + ("escape",)   # which loss (or accuracy, or escape) the target is on
#: --on escape (landscapes, bsim.sweep.escape): the chains of a task when the scenario runs none
ESCAPE_CHAINS = 256


@dataclass(frozen=True, order=True)
class Task:
    batch_size: int
    seed: int
    lr: float

    @property
    def key(self) -> tuple[int, int, float]:
        return (self.batch_size, self.seed, self.lr)

    @property
    def name(self) -> str:
        """A file-name-safe label, unique in a sweep."""
        return f"B{self.batch_size}-seed{self.seed}-lr{self.lr!r}"


@dataclass
class SweepSpec:
    scenario: Scenario
    scenario_name: str
    batch_sizes: tuple[int, ...]
    target: float                       # the loss, or EPS when ``excess``
    excess: bool = False                # target = loss at theta* + EPS, per seed
    on: str = "train"
    seeds: tuple[int, ...] = (0,)
    lr_rule: str = "none"
    lr_grid: tuple[float, ...] = ()
    max_steps: int = 20_000
    warnings: list[str] = field(default_factory=list)

    @property
    def base_lr(self) -> float:
        return self.scenario.optimizer.lr

    @property
    def base_batch_size(self) -> int:
        return self.scenario.optimizer.batch_size

    def lrs_for(self, batch_size: int) -> tuple[float, ...]:
        """The lr (or, tuned, the lrs) a batch size is trained with."""
        lr0, b0 = self.base_lr, self.base_batch_size
        if self.lr_rule != "tuned":
            return (scaled_lr(self.lr_rule, lr0, batch_size, b0),)
        return self.lr_grid or tuple(lr0 * 2.0 ** k for k in DEFAULT_GRID_EXPONENTS)

    def tasks(self) -> list[Task]:
        """Every task, the costliest (smallest B) first so that a pool packs them well."""
        return [Task(b, s, lr) for b in sorted(self.batch_sizes) for lr in self.lrs_for(b) for s in self.seeds]

    def scenario_hash(self) -> str:
        """A short hash of the scenario as trained (its TOML), to refuse resuming another sweep."""
        sc = self.scenario.copy()
        sc.seed, sc.timeline, sc.recording, sc.sweep = 0, [], None, None   # the [sweep] table is not trained
        return hashlib.sha256(scenario_to_toml(sc).encode()).hexdigest()[:12]

    @property
    def on_accuracy(self) -> bool:
        """The target is an accuracy to reach (>=), not a loss to get under (<=)."""
        return self.on in ACCURACY_ON

    @property
    def target_text(self) -> str:
        return f"opt+{self.target!r}" if self.excess else repr(float(self.target))

    def target_for(self, problem) -> float:
        """The loss (or accuracy) a task must reach: the target, or the optimum's loss (train or test) + EPS."""
        if not self.excess:
            return self.target
        import torch
        with torch.no_grad():
            best = problem.train_loss(problem.theta_star) if self.on == "train" else problem.test_loss(problem.theta_star)
        return float(best) + self.target

    def identity(self) -> dict[str, str]:
        """The columns every row of this sweep shares (checked when a sweep resumes)."""
        return {"target": self.target_text, "on": self.on, "lr_rule": self.lr_rule,
                "max_steps": str(self.max_steps), "scenario": self.scenario_name,
                "problem": self.scenario.problem.kind, "scenario_hash": self.scenario_hash()}

    def task_scenario(self, task: Task) -> Scenario:
        """The scenario one task trains: its seed, batch size and lr; no timeline."""
        sc = self.scenario.copy()
        sc.seed = task.seed
        sc.optimizer.batch_size = task.batch_size
        sc.optimizer.lr = task.lr
        sc.optimizer.lr_scaling = "none"
        sc.timeline = []
        sc.recording = None
        sc.sweep = None
        sc.chains = 1     # a task is one run: a scenario's ensemble (chains = K) is not the sweep's
        if self.on == "escape":   # ... but the escape target is a fraction of an ensemble's chains
            sc.chains = self.scenario.chains if self.scenario.chains > 1 else ESCAPE_CHAINS
        return sc
