"""The ensemble's ball over whole epochs: |theta_k - centre|^2 summed per chain and epoch.

Under shuffle with few batches an epoch, E|theta - theta*|^2 depends on the
position in the epoch (the batch noise sums to zero over an epoch: at B = 256,
N = 1024 it is 0.22x the epoch average right after an epoch ends, 1.26x
mid-epoch). The reshuffled prediction is the average over the positions, so
the measured radius it is compared with is averaged over whole epochs:

    chains_ball_radius_epoch = sqrt( sum_{k, t in W} |theta_k(t) - centre|^2 / (K |W|) ),

W the fewest last whole epochs that span at least ``WINDOW_STEPS`` steps.
The window holds one setting only: a change of batch size, lr, momentum or
sampling (or a reset) restarts it at the next epoch's first step, and it is
empty until a whole window is in.

For the ball's law (``counted``): the per-chain mean of |theta_k - centre|^2
over every whole epoch at the window's setting that began at or after
``count_from`` (the end of the burn-in, given with the setting at ``start``);
the chains are independent, so its spread over the chains gives the standard error.

Per step only device work (one (K,) addition); the host learns where epochs
end from the sampler's counters and reads the sums at frame time, in one transfer.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

#: the sliding window spans the fewest whole epochs with at least this many steps
WINDOW_STEPS = 128


class EpochWindow:
    """Owns per-chain sums of |theta_k - centre|^2: the epoch under way, the epochs ended since the last
    frame (on the device), the last whole epochs and the total since ``count_from`` (on the host)."""

    def __init__(self, chains: int, device: torch.device, dtype: torch.dtype):
        self.chains, self.device, self.dtype = chains, device, dtype
        self.start(None, None)

    def start(self, settings, count_from: int | None) -> None:
        """Forget every sum: a window for ``settings``; the next epoch that begins starts it, and the epochs
        that begin at or after ``count_from`` (None: none) count for ``counted``."""
        self.settings, self.count_from = settings, count_from
        self._acc = torch.zeros(self.chains, dtype=self.dtype, device=self.device)
        self._start: int | None = None     # first step of the epoch under way (None: wait for an epoch start)
        self._pending: list[tuple[int, int, torch.Tensor]] = []
        self.recent: deque[tuple[int, int, np.ndarray]] = deque()   # (first step, steps, (K,) sums)
        self.total = np.zeros(self.chains)
        self.total_steps = 0

    def add(self, step: int, dist2: torch.Tensor, epoch_began: bool, epoch_ended: bool) -> None:
        """One step (1-based ``step``) at the window's settings: dist2 (K,) is |theta_k - centre|^2 after
        it; epoch_began/ended: the step was its epoch's first/last."""
        if epoch_began:
            self._acc.zero_()
            self._start = step
        if self._start is None:
            return
        self._acc += dist2.to(self.dtype)
        if epoch_ended:
            self._pending.append((self._start, step - self._start + 1, self._acc.clone()))
            self._start = None

    def drain(self) -> None:
        """Bring the ended epochs to the host; fold those that began at or after ``count_from`` into the total."""
        if not self._pending:
            return
        sums = torch.stack([s for _, _, s in self._pending]).to(torch.float64).cpu().numpy()
        for (first, steps, _), row in zip(self._pending, sums):
            self.recent.append((first, steps, row))
            self._fold(first, steps, row)
        self._pending = []
        while len(self.recent) > 1 and sum(s for _, s, _ in self.recent) - self.recent[0][1] >= WINDOW_STEPS:
            self.recent.popleft()

    def _fold(self, first: int, steps: int, sums: np.ndarray) -> None:
        if self.count_from is not None and first >= self.count_from:
            self.total = self.total + sums
            self.total_steps += steps

    def radius(self, alive: np.ndarray) -> float | None:
        """sqrt of the mean over the alive chains and the window's steps; None until a whole window is in."""
        steps = sum(s for _, s, _ in self.recent)
        if steps < WINDOW_STEPS or not alive.any():
            return None
        sums = np.sum([row for _, _, row in self.recent], axis=0)[alive]
        ms = float(sums.mean()) / steps
        return float(np.sqrt(ms)) if np.isfinite(ms) and ms >= 0 else None

    def counted(self, alive: np.ndarray) -> tuple[np.ndarray, int]:
        """(per-chain mean of |theta_k - centre|^2 over the counted epochs, alive chains only; steps counted)."""
        if self.total_steps == 0:
            return np.zeros(0), 0
        return self.total[alive] / self.total_steps, self.total_steps
