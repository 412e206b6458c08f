"""One SGD step of many chains in one batched computation, and the chains' losses.

Linear models: the closed form of ``bsim.stats.chains.chain_step`` on a
(K, B, d) gather, g_k = (1/B) sum_i r_ki x_ki (+ l2 theta_k). The LSTM: the
cell with batched weights and its gradient by hand (``bsim.ensemble.lstm``;
on the CPU in float32 its C version, ``bsim.ensemble.native``, where a compiler is found).
Both give each chain the step of ``Simulation.step``: v = m v + g_B, theta -= lr v.
"""

from __future__ import annotations

import torch

from bsim.ensemble import lstm as batched_lstm
from bsim.ensemble import native
from bsim.stats.chains import chain_step

#: elements of the largest intermediate of a loss pass over the training set (chains are done in chunks)
LOSS_CHUNK_ELEMENTS = 1 << 22


def is_linear(problem) -> bool:
    return hasattr(problem, "link_residual") and hasattr(problem, "X64")


def step_chains(problem, theta: torch.Tensor, velocity: torch.Tensor, idx: torch.Tensor, lr: float,
                momentum: float, work: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(theta, velocity) of every chain after one step on the (K, B) batches idx (``work``: LSTM scratch)."""
    if getattr(problem, "landscape", False):   # bsim.problems.landscape: g_k in closed form
        g = problem.chains_grad(theta, idx)
        v = momentum * velocity + g if momentum else g
        return theta - lr * v, v
    if is_linear(problem):
        return chain_step(problem, theta, velocity, idx, lr, momentum)
    x = problem.X.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)   # problem.X[idx], 3x faster on the CPU
    y = problem.y.take(idx)
    kernel = native.kernel_for(problem, theta)
    g = kernel.batch_grads(theta, x, y) if kernel is not None else batched_lstm.batch_grads(problem, theta, x, y, work)
    v = momentum * velocity + g if momentum else g
    return theta - lr * v, v


def chains_train_loss(problem, theta: torch.Tensor) -> torch.Tensor:
    """(K,) training loss of every chain, L(theta_k) = (1/N) sum_i l_i(theta_k) (+ l2/2 |theta_k|^2)."""
    if getattr(problem, "landscape", False):
        return problem.chains_loss(theta)
    if not is_linear(problem):
        kernel = native.kernel_for(problem, theta)
        if kernel is not None:
            return kernel.losses(theta, problem.X, problem.y)
    n = problem.n_train
    per_chain = n * (4 * problem.hidden + problem.n_outputs if hasattr(problem, "hidden") else 1)
    chunk = max(1, LOSS_CHUNK_ELEMENTS // per_chain)
    out = []
    with torch.no_grad():
        for part in theta.split(chunk):
            if is_linear(problem):
                loss = problem.losses_many(part, problem.X, problem.y)
            else:
                pred = batched_lstm.forward(problem, part, problem.X)     # (k, N), or (k, N, V) logits
                loss = problem.chains_point_loss(pred, problem.y)
            out.append(loss)
    return torch.cat(out)
