"""Per-example gradients g_i = grad l_i(theta), and what one batch of them tells.

- linear models: the closed form g_i = r_i x_i (+ l2 theta), one broadcast
  (``problem.per_example_grads``);
- the LSTM (any model with ``per_example_loss``: ``example_loss``): torch.func, vmap of grad over
  the unrolled cell, on any device;
- ``per_example_loop``: one autograd call per example, the slow reference.

From B per-example gradients, the within-batch estimate of tr(Sigma) is
unbiased: E[(1/(B-1)) sum_{i in B} |g_i - g_B|^2] = N/(N-1) tr(Sigma) for
distinct examples and tr(Sigma) with replacement.
"""

from __future__ import annotations

import weakref

import torch

_VMAPPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def per_example_grads(problem, theta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows g_i for the examples idx: closed form where the problem has it, else torch.func."""
    if problem.closed_form_per_example:
        return problem.per_example_grads(theta, idx)
    return per_example_vmap(problem, theta, idx)


def _vmapped(problem):
    fn = _VMAPPED.get(problem)
    if fn is None:
        fn = torch.func.vmap(torch.func.grad(problem.example_loss), in_dims=(None, 0, 0))
        _VMAPPED[problem] = fn
    return fn


def per_example_vmap(problem, theta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """torch.func.vmap(grad(example_loss)) over the examples idx: a (B, P) tensor."""
    theta = theta.detach()
    return _vmapped(problem)(theta, problem.X[idx], problem.y[idx])


def per_example_loop(problem, theta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The reference: one autograd gradient per example, in a Python loop."""
    rows = []
    for i in idx.tolist():
        one = torch.tensor([i], device=idx.device)
        rows.append(problem.loss_and_grad(theta, one)[1])
    return torch.stack(rows)


def within_batch_trace(grads: torch.Tensor, n: int, sampling: str) -> torch.Tensor:
    """Unbiased tr(Sigma) from one batch of per-example gradients (B >= 2).

    (1/(B-1)) sum |g_i - g_B|^2, times (N-1)/N for distinct examples.
    """
    B = grads.shape[0]
    dev = grads - grads.mean(dim=0)
    s = dev.pow(2).sum() / (B - 1)
    return s if sampling == "replacement" else s * ((n - 1) / n)
