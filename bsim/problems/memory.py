"""The memory a problem will need, estimated before anything is allocated, against what the machine has.

The estimates are the measured peak resident memory of ``bsim run --headless``
(build, steps, a frame with its statistics), fitted on CPU in float64
(linear models) and float32 (the LSTM):

- linreg, logreg, softmax (synthetic): 3 copies of the n x dim features, n = n_train + n_test
  (the Gaussian draw and its rotation, then the least-squares or Newton solve),
  one more in the model's dtype when that is not float64, the per-example gradients of a
  batch (B x P, P = dim, or dim x classes for softmax, twice: the gather and the product), and for P <= 40 the exact
  epsilon-ball's d^2 x d^2 Lyapunov system (``bsim.stats.ball``; above that no exact ball is solved);
- lstm: the full gradient over the training set, by autograd through the fused
  kernel, keeps about 18 values per (example, time step, hidden unit):
  18 T H n_train values of the model's dtype, plus 4 float64 copies of the
  n x (T + 1) sequences while they are drawn.

Measured (2-core CPU, float64 linear, float32 LSTM): linreg dim 512, n 10^5: 1205 MB (estimate 1229);
logreg dim 256, n 10^5: 613 MB (614); lstm H 64, T 64, n_train 2000: 563 MB (estimate 590 + data).
A problem is refused when the estimate exceeds ``MEMORY_FRACTION`` of the memory
available now (``MemAvailable`` in /proc/meminfo, capped by a cgroup v2 limit).
"""

from __future__ import annotations

import os
from pathlib import Path

from bsim.errors import BsimInputError

#: refuse a problem whose estimated peak exceeds this fraction of the available memory
MEMORY_FRACTION = 0.8
#: the exact ball is solved up to this dimension (bsim.stats.ball.MAX_DIM_PLAIN)
_BALL_MAX_DIM = 40


def estimate_bytes(sc) -> tuple[int, str, str]:
    """(bytes, the key that drives the estimate, what the bytes are) for the scenario's problem."""
    p = sc.problem
    item = 4 if sc.resolved_dtype() == "float32" else 8
    if p.kind == "lstm":
        T, H = p.seq_len, p.hidden
        grad = 18 * T * H * p.n_train * item
        data = 4 * (p.n_train + p.n_test) * (T + 1) * 8
        return grad + data, "n_train", f"the full gradient over n_train = {p.n_train:,} sequences of {T} steps x {H} units"
    if p.data:   # the size of a data file is bounded by bsim.errors.MAX_DATA_BYTES
        return 0, "data", "data from a file"
    n, d = p.n_train + p.n_test, p.dim
    params = d * p.classes if p.kind == "softmax" else d     # softmax: a weight per feature and class
    data = 3 * n * d * 8 + (n * d * item if item != 8 else 0)
    batch = 2 * min(sc.optimizer.batch_size, p.n_train) * params * 8
    ball = 3 * params ** 4 * 8 if params <= _BALL_MAX_DIM else 0
    key = "n_test" if p.n_test > p.n_train else "n_train"
    return data + batch + ball, key, f"3 copies of {n:,} x {d} features"


def available_bytes() -> int | None:
    """Memory available to this process now: MemAvailable, capped by a cgroup v2 limit; None if unknown."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        cg = Path("/sys/fs/cgroup")
        limit = (cg / "memory.max").read_text().strip()
        if limit != "max":
            avail = min(avail, int(limit) - int((cg / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return avail


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_memory(sc) -> None:
    """A BsimInputError naming the key, the estimate and the memory available, when the problem would not fit."""
    need, key, what = estimate_bytes(sc)
    avail = available_bytes()
    if avail is None or need <= MEMORY_FRACTION * avail:
        return
    where = sc.where(key, "problem") or str(sc.path or "scenario")
    raise BsimInputError(f"{where}: problem.{key}: needs about {_gb(need)} of memory ({what}), more than "
                         f"{MEMORY_FRACTION:.0%} of the {_gb(avail)} available; expected a smaller problem "
                         f"(n_train, n_test, dim, hidden or seq_len)")
