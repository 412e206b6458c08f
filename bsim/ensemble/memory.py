"""How much memory K chains need, estimated before anything is allocated.

The estimate counts the ensemble's own tensors per chain, in bytes: the
parameters, velocities and the step's copies (about 6 P), the shuffle
permutations and their keys (N int64 + N float64), the batch gather and
its intermediates (linear: 3 B d; LSTM: the saved activations of the
unrolled cell, about 12 H per example and time step), then a safety factor
of 1.5. The budget is half of the memory available now on the device
(the GPU's free memory, else the host's MemAvailable).
"""

from __future__ import annotations

import os

import torch

SAFETY = 1.5
BUDGET_FRACTION = 0.5


def bytes_per_chain(problem, batch_size: int) -> int:
    """Estimated bytes one chain needs at batch size B (see the module docstring)."""
    item = torch.empty((), dtype=problem.dtype).element_size()
    n, p = problem.n_train, problem.n_params
    B = min(max(1, batch_size), n)
    est = 6 * p * item + n * (8 + 8)
    if hasattr(problem, "hidden"):
        est += B * problem.seq_len * (12 * problem.hidden + problem.n_inputs) * item + 2 * p * item
    else:
        est += 3 * B * p * item + 2 * n * item
    return int(SAFETY * est)


def available_bytes(device: torch.device) -> int:
    """Memory free now on the device (CUDA: mem_get_info; otherwise the host's MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def memory_problem(problem, chains: int, batch_size: int, device: torch.device) -> str | None:
    """Why K chains do not fit (the rest of the one-line error), or None when they do."""
    per = bytes_per_chain(problem, batch_size)
    need = per * chains
    budget = int(available_bytes(device) * BUDGET_FRACTION)
    if need <= budget:
        return None
    return (f"the ensemble would need about {_size(need)} on {device.type} at batch size {min(batch_size, problem.n_train)} "
            f"(half the memory available is {_size(budget)}); expected at most {max(budget // per, 1):,} chains")
