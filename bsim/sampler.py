"""Which examples each step sees: shuffle, iid and replacement sampling.

- shuffle: a new permutation each epoch, consecutive batches of it (what a
  DataLoader with shuffle=True does). A batch-size change mid-epoch takes the
  next B examples of the current permutation. A remainder shorter than B is
  the epoch's last (short) batch, or dropped when ``drop_last``.
- iid: every step draws B distinct examples uniformly, independent of the past.
- replacement: every step draws B examples uniformly with replacement.

Epoch = samples seen / N in every mode. Indices are drawn on the simulation's
device from its own generator, so sampling never syncs with the host.
"""

from __future__ import annotations

import math

import torch

from bsim.scenario import SAMPLINGS


class Sampler:
    def __init__(self, n: int, mode: str, drop_last: bool, generator: torch.Generator, device: torch.device):
        if mode not in SAMPLINGS:
            raise ValueError(f"unknown sampling {mode!r}")
        self.n, self.mode, self.drop_last = n, mode, drop_last
        self.gen, self.device = generator, device
        self.perm: torch.Tensor | None = None
        self.pos = 0                  # position in the current permutation (shuffle)
        self.samples = 0              # examples drawn so far
        self.epoch_start_samples = 0  # samples at the start of the current epoch
        self.epochs_done = 0          # completed epochs
        self.batch_in_epoch = 0       # batches drawn in the current epoch

    # ------------------------------------------------------------------ draws
    def _new_perm(self) -> None:
        self.perm = torch.randperm(self.n, generator=self.gen, device=self.device)
        self.pos = 0

    def next_batch(self, batch_size: int) -> torch.Tensor:
        """Indices of the next batch (possibly shorter than B at an epoch's end)."""
        B = min(batch_size, self.n)
        if self.mode == "shuffle":
            idx = self._next_shuffled(B)
        elif self.mode == "iid":
            idx = torch.randperm(self.n, generator=self.gen, device=self.device)[:B]
        else:
            idx = torch.randint(self.n, (B,), generator=self.gen, device=self.device)
        self._count(int(idx.shape[0]))
        return idx

    def next_batches(self, batch_size: int, count: int) -> list[torch.Tensor]:
        """The next ``count`` batches, exactly as ``count`` calls of ``next_batch`` would draw them
        (under shuffle the full batches left in an epoch are sliced from its permutation at once)."""
        B = min(batch_size, self.n)
        if self.mode != "shuffle" or type(self).next_batch is not Sampler.next_batch:   # (a subclass's own draws)
            return [self.next_batch(B) for _ in range(count)]
        out: list[torch.Tensor] = []
        while len(out) < count:
            if self.perm is None:
                self._new_perm()
            k = min(count - len(out), (self.n - self.pos) // B)
            if k == 0:                       # a short or dropped remainder: the one-batch path
                out.append(self.next_batch(B))
                continue
            out.extend(self.perm[self.pos:self.pos + k * B].view(k, B).unbind(0))
            self.pos += k * B
            self.samples += k * B
            self.batch_in_epoch += k
            if self.pos >= self.n:
                self._end_epoch()
        return out

    def _next_shuffled(self, B: int) -> torch.Tensor:
        if self.perm is None:
            self._new_perm()
        if self.n - self.pos < B and self.drop_last:
            self._end_epoch()  # the short remainder is skipped: the epoch ends here
            self._new_perm()
        take = min(B, self.n - self.pos)
        idx = self.perm[self.pos:self.pos + take]
        self.pos += take
        return idx

    def _end_epoch(self) -> None:
        self.epochs_done += 1
        self.batch_in_epoch = 0
        self.epoch_start_samples = self.samples
        self.perm, self.pos = None, 0

    def _count(self, b: int) -> None:
        self.samples += b
        self.batch_in_epoch += 1
        if self.mode == "shuffle":
            if self.pos >= self.n:
                self._end_epoch()
        else:
            # epochs are samples / N: a new one starts each time N more are seen
            while self.samples - self.epoch_start_samples >= self.n:
                self.epochs_done += 1
                self.epoch_start_samples += self.n
                self.batch_in_epoch = 0

    # ----------------------------------------------------------------- control
    def set_mode(self, mode: str) -> None:
        """Switch sampling; a shuffle epoch in progress is abandoned (a new one starts)."""
        if mode not in SAMPLINGS:
            raise ValueError(f"unknown sampling {mode!r}")
        if mode != self.mode:
            self.mode = mode
            self.perm, self.pos = None, 0
            self.epoch_start_samples = self.samples
            self.batch_in_epoch = 0

    # ---------------------------------------------------------------- counters
    @property
    def epoch(self) -> float:
        """Epoch as a float: samples seen / N."""
        return self.samples / self.n

    def batches_per_epoch(self, batch_size: int) -> int:
        """Batches in the current epoch at the current batch size (done + still to come)."""
        B = min(batch_size, self.n)
        if self.mode == "shuffle":
            remaining = self.n - self.pos
            return self.batch_in_epoch + (remaining // B if self.drop_last else math.ceil(remaining / B))
        remaining = self.n - (self.samples - self.epoch_start_samples)
        return self.batch_in_epoch + math.ceil(remaining / B)

    def counters(self) -> tuple:
        """A cheap snapshot of where the draws stand (not the generator): see ``restore_counters``."""
        return (self.perm, self.pos, self.samples, self.epoch_start_samples, self.epochs_done, self.batch_in_epoch)

    def restore_counters(self, saved: tuple) -> None:
        """Undo the draws since ``counters()`` (the permutation is never changed in place)."""
        (self.perm, self.pos, self.samples, self.epoch_start_samples,
         self.epochs_done, self.batch_in_epoch) = saved
