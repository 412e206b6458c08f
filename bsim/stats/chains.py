"""Many independent SGD chains on a linear problem, vectorised over the chains.

A precise measurement of the epsilon-ball: M chains, each the same SGD as
``Simulation.step`` (v = m v + g_B, theta -= lr v; g_B from the problem's
closed form), each with its own batches, started at theta*, run for a
burn-in and then averaged over ``steps`` steps. The chains are independent,
so the standard error of the mean squared distance is the spread of the
per-chain averages over sqrt(M), with no autocorrelation to estimate.

Batches: iid draws B distinct examples per chain and step (the first B of a
uniformly random ordering: a uniform random B-subset, as Sampler's
``randperm(N)[:B]``), replacement draws B independent indices, shuffle takes
consecutive slices of a fresh permutation per chain and epoch (B must
divide N, so that every batch has B examples).
"""

from __future__ import annotations

import math

import torch


class ChainSampler:
    def __init__(self, n: int, sampling: str, chains: int, generator: torch.Generator, device):
        self.n, self.sampling, self.m, self.gen, self.device = n, sampling, chains, generator, device
        self.perm, self.pos = None, 0

    def _random_orders(self) -> torch.Tensor:
        return torch.rand(self.m, self.n, generator=self.gen, device=self.device).argsort(dim=1)

    def next(self, batch_size: int) -> torch.Tensor:
        """(M, B) indices: row j is chain j's batch."""
        B = batch_size
        if self.sampling == "replacement":
            return torch.randint(self.n, (self.m, B), generator=self.gen, device=self.device)
        if self.sampling == "iid":
            if B == 1:
                return torch.randint(self.n, (self.m, 1), generator=self.gen, device=self.device)
            keys = torch.rand(self.m, self.n, generator=self.gen, device=self.device)
            return keys.topk(B, dim=1, sorted=False).indices
        if self.n % B:
            raise ValueError(f"shuffle chains need B to divide N (B = {B}, N = {self.n})")
        if self.perm is None or self.pos >= self.n:
            self.perm, self.pos = self._random_orders(), 0
        idx = self.perm[:, self.pos:self.pos + B]
        self.pos += B
        return idx


def chain_step(problem, theta: torch.Tensor, velocity: torch.Tensor, idx: torch.Tensor, lr: float,
               momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step of every chain: g_B = (1/B) sum r_i x_i (+ l2 theta), v = m v + g_B, theta -= lr v.

    (Also the ensemble's step, bsim.ensemble: index_select and bmm, about twice einsum's speed at this size.)
    """
    M, B = idx.shape
    flat = idx.reshape(-1)
    Xb = problem.X.index_select(0, flat).view(M, B, -1)   # (M, B, d)
    g = problem.batch_grads_many(theta, Xb, problem.y.index_select(0, flat).view(M, B))
    l2 = problem.l2
    if l2:
        g = g + l2 * theta
    v = momentum * velocity + g if momentum else g
    return theta - lr * v, v


def measure_ball(problem, batch_size: int, lr: float, momentum: float, sampling: str, chains: int,
                 burn_in: int, steps: int, seed: int = 0) -> tuple[float, float]:
    """(mean over chains and steps of |theta - theta*|^2, its standard error), chains started at theta*."""
    gen = torch.Generator(device=problem.device)
    gen.manual_seed(seed)
    sampler = ChainSampler(problem.n_train, sampling, chains, gen, problem.device)
    star = problem.theta_star
    theta = star.expand(chains, -1).clone()
    vel = torch.zeros_like(theta)
    acc = torch.zeros(chains, dtype=torch.float64, device=problem.device)
    for t in range(burn_in + steps):
        theta, vel = chain_step(problem, theta, vel, sampler.next(batch_size), lr, momentum)
        if t >= burn_in:
            acc += ((theta - star) ** 2).sum(1).double()
    per_chain = acc / steps
    return float(per_chain.mean()), float(per_chain.std() / math.sqrt(chains))
