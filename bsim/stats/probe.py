"""A probe: K fresh batches at the current parameters, their spread against c_B tr(Sigma).

The batches come from the probe stream (PROBE_STREAM of the scenario seed,
a generator of the statistics' own), drawn as the sampling in force draws
them at fixed parameters (B distinct examples for shuffle and iid, B with
replacement otherwise). Nothing of the simulation is read but its parameters
and settings, nothing is written: the training trajectory and its RNG are
untouched. The spread is mean_k |g_k - G|^2 with its standard error.
"""

from __future__ import annotations

import math

import torch

from bsim.sampler import Sampler
from bsim.stats.cfactor import c_factor
from bsim.stats.info import ProbeResult
from bsim.stats.strategy import NoiseStrategy, vec


def run_probe(problem, theta: torch.Tensor, step: int, batch_size: int, sampling: str,
              generator: torch.Generator, strategy: NoiseStrategy, batches: int = 32) -> ProbeResult:
    """``batches`` batch gradients at ``theta`` drawn with ``generator``; G and tr(Sigma) from ``strategy``."""
    if batches < 2:
        raise ValueError("a probe needs at least 2 batches")
    n, B = problem.n_train, batch_size
    sampler = Sampler(n, "replacement" if sampling == "replacement" else "iid", False, generator, problem.device)
    with torch.no_grad():
        grads = torch.stack([problem.loss_and_grad(theta, sampler.next_batch(B))[1] for _ in range(batches)])
        grads = grads.to(strategy.dtype)
        G, trace = strategy.full_grad_and_trace(theta)
        noise = ((grads - G) ** 2).sum(1).cpu().numpy()
    mean = float(noise.mean())
    se = float(noise.std(ddof=1) / math.sqrt(len(noise)))
    pred = c_factor(n, B, sampling) * trace if trace is not None else None
    small = problem.small
    return ProbeResult(
        step=step, batch_size=B, sampling=sampling, batches=batches, grad_noise_mean=mean,
        grad_noise_se=se, predicted=pred, trace_sigma=trace, ratio=mean / pred if pred else None,
        full_grad=vec(G) if small else None, batch_grads=tuple(vec(g) for g in grads) if small else None)
