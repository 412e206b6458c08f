"""The generalization gap across the chains: train minus test accuracy, its mean and standard error.

Each chain k (chain 0 the run itself) has its own accuracy on the training set, a_k, and on the
test set, b_k; its gap is d_k = a_k - b_k. The chains share the data and theta_0 and differ only by
their batches, so the mean gap over K chains, d = (1/K) sum_k d_k, has the standard error
s_d / sqrt(K), s_d^2 = sum_k (d_k - d)^2 / (K - 1): the spread that the sampling noise alone gives
(a new draw of the data or of theta_0 would add to it). K = 1: no standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bsim.ensemble import lstm as batched_lstm

#: elements of the largest intermediate of an accuracy pass (chains are done in chunks)
CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Gap:
    """Mean over the chains of train accuracy, test accuracy and their difference; the difference's se."""

    train_acc: float
    test_acc: float
    gap: float
    se: float | None      # None: one chain
    chains: int


def chains_accuracy(problem, thetas: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K,) fraction of the rows of X each row of thetas classifies right (the problem's own rule)."""
    with torch.no_grad():
        if hasattr(problem, "hidden"):            # the LSTM: the batched cell, argmax of the logits
            per_chain = X.shape[0] * (4 * problem.hidden + problem.n_outputs)
            out = []
            for part in thetas.split(max(1, CHUNK_ELEMENTS // per_chain)):
                z = batched_lstm.forward(problem, part, X)
                out.append((z.argmax(-1) == y).to(thetas.dtype).mean(1))
            return torch.cat(out)
        try:
            return torch.vmap(lambda theta: problem.accuracy(theta, X, y))(thetas)
        except RuntimeError:
            return torch.stack([problem.accuracy(t, X, y) for t in thetas])


def generalization_gap(problem, thetas: torch.Tensor) -> Gap | None:
    """The gap over the chains thetas (K, P); None when the problem is not a classifier or has no test set."""
    if problem.X_test is None or problem.X_test.shape[0] == 0 or problem.train_accuracy(thetas[0]) is None:
        return None
    a = chains_accuracy(problem, thetas, problem.X, problem.y).double()
    b = chains_accuracy(problem, thetas, problem.X_test, problem.y_test).double()
    d = a - b
    k = int(d.shape[0])
    se = float(d.std(correction=1)) / math.sqrt(k) if k > 1 else None
    return Gap(float(a.mean()), float(b.mean()), float(d.mean()), se, k)


def gap_line(label: str, epoch: float, g: Gap) -> str:
    """One line for the end of a headless race: 'B=8 at epoch 20.0: train acc 99.1%, test acc 95.3%,
    train - test +3.8 ± 0.2 points (mean ± se over 4 chains)'."""
    spread = (f" ± {100 * g.se:.1f} points (mean ± se over {g.chains} chains)" if g.se is not None
              else " points (one chain: --chains K gives its standard error)")
    return (f"{label} at epoch {epoch:.1f}: train acc {100 * g.train_acc:.1f}%, test acc {100 * g.test_acc:.1f}%, "
            f"train - test {100 * g.gap:+.1f}{spread}")


def race_gap_lines(race) -> list[str]:
    """The generalization gap of every lane that has stepped (none when the problem is not a classifier)."""
    out = []
    for lane in race.lanes:
        sim = lane.sim
        if not lane.steps or lane.diverged:
            continue
        thetas = sim.ensemble.live_thetas() if sim.ensemble is not None else sim.theta[None]
        g = generalization_gap(sim.problem, thetas)
        if g is not None:
            out.append(gap_line(lane.label, sim.sampler.epoch, g))
    return out
