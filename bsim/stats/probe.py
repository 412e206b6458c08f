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

SMALL = 8


def vec(t) -> tuple[float, ...] | None:
    if t is None:
        return None
    return tuple(float(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t))


def run_probe(stats, batches: int = 32) -> ProbeResult:
    """Probe at ``stats.sim``'s current parameters with ``stats``' probe generator."""
    if batches < 2:
        raise ValueError("a probe needs at least 2 batches")
    sim, p, n = stats.sim, stats.problem, stats.n
    theta, B, samp = sim.theta, sim.batch_size, sim.sampling
    sampler = Sampler(n, "replacement" if samp == "replacement" else "iid", False, stats._probe_gen, stats.device)
    with torch.no_grad():
        grads = torch.stack([p.loss_and_grad(theta, sampler.next_batch(B))[1] for _ in range(batches)])
        grads = grads.to(stats.dtype)
        if stats.linear:
            G, tr, _ = stats.engine(theta[None])
            G, trace = G[0], float(tr[0])
        else:
            G, trace = p.full_grad(theta).to(stats.dtype), stats.two.trace_sigma
        noise = ((grads - G) ** 2).sum(1).cpu().numpy()
    mean = float(noise.mean())
    se = float(noise.std(ddof=1) / math.sqrt(len(noise)))
    pred = c_factor(n, B, samp) * trace if trace is not None else None
    small = p.n_params <= SMALL
    return ProbeResult(
        step=sim.step_count, batch_size=B, sampling=samp, batches=batches, grad_noise_mean=mean,
        grad_noise_se=se, predicted=pred, trace_sigma=trace, ratio=mean / pred if pred else None,
        full_grad=vec(G) if small else None, batch_grads=tuple(vec(g) for g in grads) if small else None)
