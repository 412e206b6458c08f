"""Batches of many chains at once, in step with the run's own sampler.

All chains take the same batch size B at every step (the user's), so their
positions within an epoch coincide: the counters (samples, epoch, position,
drop_last) are the run's ``Sampler``'s, inherited; only the draws differ,
one row per chain, all from one generator in one call:
- shuffle: a (K, N) matrix of permutations, one row per chain and epoch
  (argsort of uniform random keys); a batch is the next B columns of every row,
  so a batch-size change mid-epoch and a short or dropped last batch behave
  as in the single run;
- iid: B distinct examples per chain (the B smallest of N uniform keys: a
  uniform B-subset, as ``randperm(N)[:B]``);
- replacement: B independent uniform indices per chain.
"""

from __future__ import annotations

import torch

from bsim.sampler import Sampler


class ChainsSampler(Sampler):
    """Owns the chains' permutations and generator; ``next_batch`` returns (K, B) indices, row k chain k's batch."""

    def __init__(self, n: int, chains: int, mode: str, drop_last: bool, generator: torch.Generator,
                 device: torch.device):
        self.chains = chains
        super().__init__(n, mode, drop_last, generator, device)

    def _new_perm(self) -> None:
        # stored as (N, K), a transposed view of K contiguous permutations: the inherited
        # _next_shuffled slices rows pos:pos+B, i.e. the next B examples of every chain
        # one sort of K N integer keys, row k's in [k 2^40, (k + 1) 2^40): each row sorts within itself
        # (a single flat sort is faster than K row sorts on the CPU); ties are broken by position
        K, n = self.chains, self.n
        rows = torch.arange(K, device=self.device)
        keys = torch.randint(1 << 40, (K, n), generator=self.gen, device=self.device).add_((rows << 40)[:, None])
        order = keys.view(-1).argsort(stable=True).view(K, n) - (rows * n)[:, None]
        self.perm = order.T
        self.pos = 0

    def next_batch(self, batch_size: int) -> torch.Tensor:
        """(K, B) indices of the next batch of every chain (B shorter at a shuffle epoch's end)."""
        B = min(batch_size, self.n)
        K, n, gen, dev = self.chains, self.n, self.gen, self.device
        if self.mode == "shuffle":
            idx = self._next_shuffled(B).T
        elif self.mode == "iid" and B > 1:
            keys = torch.rand(K, n, generator=gen, device=dev)
            idx = keys.topk(B, dim=1, largest=False, sorted=True).indices   # sorted: the same order on every device
        else:  # replacement, or iid with B = 1 (one example: the same law)
            idx = torch.randint(n, (K, B), generator=gen, device=dev)
        self._count(int(idx.shape[1]))
        return idx
