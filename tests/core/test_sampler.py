"""The sampler: shuffle draws each example exactly once per epoch (also when B
changes mid-epoch), iid draws B distinct examples, replacement may repeat.

The shuffle tests compare the sampler with a small reference model of the
rules (docs/usage.md, "Scenario files"): the next batch takes the next B unused examples of the
epoch; a remainder shorter than B is the epoch's last (short) batch, or with
drop_last is skipped and a new epoch starts.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bsim.sampler import Sampler

CPU = torch.device("cpu")
FAST = settings(max_examples=60, deadline=None)


def make(n, mode="shuffle", drop_last=False, seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return Sampler(n, mode, drop_last, g, CPU)


class ShuffleModel:
    """What a DataLoader-like shuffle with mid-epoch batch-size changes should do."""

    def __init__(self, n, drop_last):
        self.n, self.drop_last = n, drop_last
        self.used: set[int] = set()
        self.epochs = self.batches = self.samples = 0

    def before_draw(self, B):
        """Returns the length the next batch must have (and ends a dropped epoch)."""
        b = min(B, self.n)
        left = self.n - len(self.used)
        if self.drop_last and left < b:
            assert 0 < left  # an empty remainder ended the epoch already
            self._end()
            left = self.n
        return b if self.drop_last else min(b, left)

    def after_draw(self, idx):
        assert self.used.isdisjoint(idx), "an example came twice in one epoch"
        self.used |= set(idx)
        self.samples += len(idx)
        self.batches += 1
        if len(self.used) == self.n:
            self._end()

    def _end(self):
        self.epochs += 1
        self.batches = 0
        self.used = set()

    def batches_left(self, B):
        """Batches still to come in this epoch if B stays fixed (by stepping the rules)."""
        b, left, k = min(B, self.n), self.n - len(self.used), 0
        while left > 0 and not (self.drop_last and left < b):
            left -= min(b, left)
            k += 1
        return k


@FAST
@given(n=st.integers(2, 40), sizes=st.lists(st.integers(1, 60), min_size=1, max_size=80),
       drop_last=st.booleans(), seed=st.integers(0, 1000))
def test_shuffle_follows_the_rules_across_batch_size_changes(n, sizes, drop_last, seed):
    s, model = make(n, "shuffle", drop_last, seed), ShuffleModel(n, drop_last)
    for B in sizes:
        # the epoch's batch count the counters announce, checked against the rules
        assert s.batches_per_epoch(B) == s.batch_in_epoch + model.batches_left(B)
        want = model.before_draw(B)
        idx = s.next_batch(B).tolist()
        assert len(idx) == want
        assert len(set(idx)) == len(idx) and all(0 <= i < n for i in idx)
        model.after_draw(idx)
        assert s.samples == model.samples
        assert s.epoch == model.samples / n
        assert s.epochs_done == model.epochs
        assert s.batch_in_epoch == model.batches


@FAST
@given(n=st.integers(2, 30), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=60), seed=st.integers(0, 1000))
def test_shuffle_without_drop_last_every_example_exactly_once_per_epoch(n, sizes, seed):
    """Cut the stream of drawn indices into runs of N: each run is a permutation of range(N)."""
    s = make(n, "shuffle", False, seed)
    stream = []
    for B in sizes * 3:
        batch = s.next_batch(B).tolist()
        # a batch never straddles two epochs
        assert len(stream) // n == (len(stream) + len(batch) - 1) // n
        stream += batch
    for e in range(len(stream) // n):
        assert sorted(stream[e * n:(e + 1) * n]) == list(range(n))
    assert s.epochs_done == len(stream) // n


def test_mid_epoch_change_takes_the_next_examples_of_the_same_permutation():
    n = 20
    a, b = make(n, seed=5), make(n, seed=5)
    whole = a.next_batch(20).tolist()           # one batch of the whole permutation
    parts = b.next_batch(3).tolist() + b.next_batch(7).tolist() + b.next_batch(10).tolist()
    assert parts == whole
    assert b.epochs_done == 1 and b.batch_in_epoch == 0


def test_drop_last_skips_a_short_remainder_and_keeps_full_batches():
    n = 10
    s = make(n, "shuffle", True, seed=1)
    sizes = [len(s.next_batch(4)) for _ in range(6)]
    assert sizes == [4] * 6                     # never a short batch
    assert s.epochs_done == 2 and s.samples == 24  # 2 examples skipped in each of the first 2 epochs
    assert s.epoch == 2.4                        # epoch = samples / N, skipped examples not counted
    s2 = make(n, "shuffle", False, seed=1)
    assert [len(s2.next_batch(4)) for _ in range(3)] == [4, 4, 2]


@FAST
@given(n=st.integers(2, 50), B=st.integers(1, 60), seed=st.integers(0, 1000),
       mode=st.sampled_from(["iid", "replacement"]))
def test_iid_and_replacement_counters(n, B, seed, mode):
    """Epoch = samples / N; a new epoch (batch index 0) each time N more samples are seen."""
    s = make(n, mode, False, seed)
    b = min(B, n)
    for step in range(1, 3 * n // b + 3):
        before_epochs, bie = s.epochs_done, s.batch_in_epoch
        # batches still to come until the next N samples are complete
        left = math.ceil(((before_epochs + 1) * n - s.samples) / b)
        assert s.batches_per_epoch(B) == bie + left
        idx = s.next_batch(B)
        assert idx.shape == (b,)
        assert s.samples == step * b and s.epoch == step * b / n
        assert s.epochs_done == (step * b) // n
        if s.epochs_done > before_epochs:
            assert s.batch_in_epoch == 0 and left == 1
        else:
            assert s.batch_in_epoch == bie + 1


def test_iid_batches_are_distinct_and_uniform():
    n, B, T = 50, 20, 2000
    s = make(n, "iid", seed=3)
    counts = torch.zeros(n)
    for _ in range(T):
        idx = s.next_batch(B)
        assert len(set(idx.tolist())) == B
        counts[idx] += 1
    # each example is in a batch with probability p = B/N; its count is Binomial(T, p):
    # mean T p = 800, sd sqrt(T p (1-p)) ~ 21.9; 5 sd bounds every one of the 50
    p = B / n
    sd = math.sqrt(T * p * (1 - p))
    assert (counts - T * p).abs().max() < 5 * sd


def test_iid_batches_are_independent_of_the_past():
    """Unlike shuffle, iid reuses examples across consecutive batches of one epoch."""
    n, B = 10, 5
    s = make(n, "iid", seed=0)
    overlaps = [len(set(s.next_batch(B).tolist()) & set(s.next_batch(B).tolist())) for _ in range(200)]
    # two independent draws of 5 of 10 share 2.5 examples on average (hypergeometric, sd ~0.83:
    # the mean of 200 has sd ~0.06); shuffle would share none
    assert abs(sum(overlaps) / len(overlaps) - 2.5) < 0.3


def test_replacement_repeats_examples_within_a_batch():
    n, B = 10, 10
    s = make(n, "replacement", seed=0)
    batches = [s.next_batch(B).tolist() for _ in range(100)]
    assert all(len(b) == B and all(0 <= i < n for i in b) for b in batches)
    # a batch of 10 draws from 10 is duplicate-free with probability 10!/10^10 ~ 3.6e-4
    assert sum(len(set(b)) < B for b in batches) >= 95
    # the mean number of distinct examples is N (1 - (1 - 1/N)^B) ~ 6.51 (sd of one batch ~0.9)
    mean_distinct = sum(len(set(b)) for b in batches) / len(batches)
    assert abs(mean_distinct - n * (1 - (1 - 1 / n) ** B)) < 0.4


def test_batch_above_n_is_clamped_to_n():
    for mode in ("shuffle", "iid", "replacement"):
        s = make(7, mode)
        assert len(s.next_batch(100)) == 7
        assert s.batches_per_epoch(100) == s.batch_in_epoch + 1


def test_switching_to_shuffle_starts_a_fresh_epoch():
    n = 12
    s = make(n, "shuffle", seed=2)
    s.next_batch(5)                              # an epoch in progress is abandoned ...
    s.set_mode("iid")
    s.next_batch(5)
    s.set_mode("shuffle")
    assert s.batch_in_epoch == 0
    stream = [i for _ in range(4) for i in s.next_batch(3).tolist()]
    assert sorted(stream) == list(range(n))      # ... and the new one has every example once
    assert s.epochs_done == 1 and s.epoch == 22 / 12


def test_same_seed_same_draws_other_seed_other_draws():
    for mode in ("shuffle", "iid", "replacement"):
        a, b, c = make(100, mode, seed=4), make(100, mode, seed=4), make(100, mode, seed=5)
        da = [a.next_batch(8) for _ in range(30)]
        assert all(torch.equal(x, b.next_batch(8)) for x in da)
        assert not all(torch.equal(x, c.next_batch(8)) for x in da)
