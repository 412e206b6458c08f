"""What NoiseStats and its two strategies (``exact``, ``sampled``) pass between them, typed.

Settings: the settings in force at a step (batch size, lr, momentum, sampling).
SettingsLog: the steps at which the settings changed, to split a chunk of
steps into runs under one setting (the averages and the ball window are kept
per setting). StepQuantities: the gradient quantities of one step at its
parameters. Chunk: a buffer of steps processed on the device, whose
``HOST_FIELDS`` come to the host in NoiseStats' single transfer.
NoiseStrategy: the interface both strategies implement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from collections.abc import Callable, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from bsim.stats.info import BallInfo
    from bsim.stats.window import BallWindow, VarianceByBatchSize


@dataclass(frozen=True)
class Settings:
    """The settings a step ran under; the averages restart when they change."""

    batch_size: int
    lr: float
    momentum: float
    sampling: str


class SettingsLog:
    """(first step, settings) each time the settings changed, in step order, since the last reset."""

    def __init__(self):
        self.segments: list[tuple[int, Settings]] = []

    def mark(self, step: int, settings: Settings) -> None:
        if not self.segments or self.segments[-1][1] != settings:
            self.segments.append((step, settings))

    @property
    def current(self) -> Settings | None:
        return self.segments[-1][1] if self.segments else None

    @property
    def current_start(self) -> int | None:
        return self.segments[-1][0] if self.segments else None

    def at(self, step: int) -> Settings:
        """The settings in force at ``step``."""
        starts = [s for s, _ in self.segments]
        return self.segments[max(0, int(np.searchsorted(starts, step, side="right")) - 1)][1]

    def ranges(self, steps: np.ndarray) -> Iterator[tuple[int, int, Settings, int]]:
        """(lo, hi, settings, segment start) over runs of (sorted) ``steps`` under one setting."""
        starts = np.array([s for s, _ in self.segments])
        seg = np.maximum(np.searchsorted(starts, steps, side="right") - 1, 0)
        lo = 0
        while lo < len(steps):
            hi = lo + int(np.searchsorted(seg[lo:], seg[lo], side="right"))
            seg_start, settings = self.segments[int(seg[lo])]
            yield lo, hi, settings, seg_start
            lo = hi


@dataclass(frozen=True)
class StepQuantities:
    """The step just taken, at the parameters it started from: |g_B - G|^2, g_B . G, |g_B|^2, |G|^2, tr(Sigma).

    full_grad and batch_grad (G and g_B themselves) only for small problems.
    """

    step: int
    grad_noise: float
    dot: float
    batch_norm2: float
    full_norm2: float
    trace_sigma: float | None
    full_grad: tuple[float, ...] | None = None
    batch_grad: tuple[float, ...] | None = None


@dataclass
class Chunk:
    """Steps processed together on the device; HOST_FIELDS (tensors) come to the host as numpy arrays."""

    HOST_FIELDS = ()

    steps: np.ndarray
    batch_sizes: np.ndarray

    def device_tensors(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.HOST_FIELDS]

    def set_host(self, arrays: list[np.ndarray]) -> None:
        for name, arr in zip(self.HOST_FIELDS, arrays):
            setattr(self, name, arr)


def to_host(chunks: list[Chunk]) -> None:
    """Bring every chunk's HOST_FIELDS to the host in one transfer (float64 numpy arrays, shapes kept)."""
    tensors = [t for ch in chunks for t in ch.device_tensors()]
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors]).cpu().numpy()
    off = 0
    for ch in chunks:
        arrays = []
        for t in ch.device_tensors():
            arrays.append(flat[off:off + t.numel()].reshape(tuple(t.shape)))
            off += t.numel()
        ch.set_host(arrays)


def vec(t) -> tuple[float, ...] | None:
    """A tensor (or sequence) as a tuple of floats, for a frame; None stays None."""
    if t is None:
        return None
    return tuple(float(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t))


class NoiseStrategy(Protocol):
    """How one kind of problem measures its gradient noise; NoiseStats drives it.

    A strategy is told about steps (``takes``, ``record``), processes the
    buffered steps on the device (``flush``), folds host-side chunks into the
    averages it is handed (``fold``) and answers for a frame (``step_quantities``,
    ``noise_scale``, ``ball``, ``full_grad_and_trace``).
    """

    full_every: int
    cap: int
    dtype: torch.dtype
    trace_sigma_label: str
    note: str

    def clear(self) -> None: ...

    def takes(self, step: int) -> bool: ...

    def record(self, sim, step: int, index: int) -> None: ...

    def flush(self, steps: list[int], thetas: list[torch.Tensor], grads: list[torch.Tensor],
              batch_sizes: list[int]) -> Chunk: ...

    def fold(self, chunk: Chunk, log: SettingsLog, by_batch_size: VarianceByBatchSize,
             window_for: Callable[[int, Settings], BallWindow]) -> None: ...

    def window_shape(self, settings: Settings) -> tuple[int, int]: ...

    def step_quantities(self, sim) -> StepQuantities: ...

    def noise_scale(self, q: StepQuantities) -> float | None: ...

    def noise_scale_smoothed(self) -> tuple[float | None, int]: ...

    def cos_to_full_mean(self) -> tuple[float | None, int]: ...

    def full_grad_and_trace(self, theta: torch.Tensor) -> tuple[torch.Tensor, float | None]: ...

    def ball(self, sim, settings: Settings, window: BallWindow | None) -> BallInfo: ...
