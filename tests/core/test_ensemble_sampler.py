"""The chains' batches (bsim.ensemble.sampler): each chain a sampler of its own, all in step with the run's.

Under shuffle every chain sees every example exactly once per epoch, with the
batch size changed mid-epoch and with or without drop_last; the epoch
counters are the run's; the chains' draws differ from each other and from the
run's own stream (chain 0).
"""

from __future__ import annotations

import pytest
import torch

from bsim.ensemble.engine import CHAINS_STREAM
from bsim.ensemble.sampler import ChainsSampler
from bsim.problems.base import SAMPLE_STREAM, stream_seed
from bsim.sampler import Sampler

N, K = 37, 16
# batch sizes per step: changes mid-epoch, a size that does not divide N, one above N (clamped)
SIZES = [4, 4, 5, 8, 3, 3, 10, 7, 1, 6, 50, 9, 2, 2, 11, 4, 13, 5, 5, 5, 8, 40, 3, 1, 16]


def pair(mode, drop_last, seed=0):
    """The run's sampler and the chains', seeded as the Simulation and the Ensemble seed them."""
    gen_run = torch.Generator().manual_seed(stream_seed(seed, SAMPLE_STREAM))
    gen_chains = torch.Generator().manual_seed(stream_seed(seed, CHAINS_STREAM))
    run = Sampler(N, mode, drop_last, gen_run, torch.device("cpu"))
    chains = ChainsSampler(N, K, mode, drop_last, gen_chains, torch.device("cpu"))
    return run, chains


def _check_epoch(seen, remainder_dropped, B):
    for k, ex in enumerate(seen):
        assert len(ex) == len(set(ex)), f"chain {k} saw an example twice in one epoch"
        if remainder_dropped:
            assert 0 <= N - len(ex) < B           # only a remainder shorter than the next B is skipped
        else:
            assert sorted(ex) == list(range(N)), f"chain {k} missed examples"


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_every_chain_sees_each_example_once_per_epoch(drop_last):
    run, chains = pair("shuffle", drop_last)
    seen = [[] for _ in range(K)]          # this epoch's examples, per chain
    epochs = 0
    for B in SIZES * 4:
        b = min(B, N)
        if drop_last and chains.perm is not None and N - chains.pos < b:   # this draw starts a new epoch
            _check_epoch(seen, True, b)
            seen, epochs = [[] for _ in range(K)], epochs + 1
        idx_run = run.next_batch(B)
        idx = chains.next_batch(B)
        assert idx.shape == (K, idx_run.shape[0])      # the run's batch size, short last batch included
        assert (run.samples, run.epochs_done, run.batch_in_epoch, run.pos) == \
               (chains.samples, chains.epochs_done, chains.batch_in_epoch, chains.pos)
        for k in range(K):
            seen[k] += idx[k].tolist()
        if chains.perm is None:                          # the epoch ended with this batch: all N seen
            _check_epoch(seen, False, b)
            seen, epochs = [[] for _ in range(K)], epochs + 1
    assert epochs >= 5 and epochs == chains.epochs_done


def test_drop_last_skips_the_short_remainder_like_the_run():
    run, chains = pair("shuffle", True)
    for B in (10, 10, 10, 10):       # 37 = 3 x 10 + 7: the 4th batch starts a new epoch
        a, b = run.next_batch(B), chains.next_batch(B)
        assert b.shape == (K, a.shape[0]) == (K, 10)
    assert run.epochs_done == chains.epochs_done == 1 and chains.pos == run.pos == 10


@pytest.mark.parametrize("mode", ["shuffle", "iid", "replacement"])
def test_chains_streams_differ_from_each_other_and_from_the_run(mode):
    run, chains = pair(mode, False)
    run_batches = torch.cat([run.next_batch(8) for _ in range(12)])        # the run's 12 batches in a row
    batches = torch.cat([chains.next_batch(8) for _ in range(12)], 1)       # (K, the same)
    rows = {tuple(b.tolist()) for b in batches}
    assert len(rows) == K                                                     # no two chains alike
    assert all(not torch.equal(b, run_batches) for b in batches)


def test_iid_batches_are_distinct_examples_and_uniform():
    _, chains = pair("iid", False)
    counts = torch.zeros(N)
    steps, B = 400, 6
    for _ in range(steps):
        idx = chains.next_batch(B)
        assert all(len(set(row.tolist())) == B for row in idx)
        counts += torch.bincount(idx.flatten(), minlength=N)
    expected = steps * K * B / N
    # multinomial counts: sd ~ sqrt(expected); 5 sd on the largest of 37
    assert (counts - expected).abs().max() < 5 * expected ** 0.5


def test_replacement_can_repeat_within_a_batch():
    _, chains = pair("replacement", False)
    idx = chains.next_batch(20)
    assert any(len(set(row.tolist())) < 20 for row in idx)   # P(no repeat in 20 of 37) ~ 1e-3 per chain


def test_mode_change_follows_the_run():
    run, chains = pair("shuffle", False)
    for B in (5, 7):
        run.next_batch(B), chains.next_batch(B)
    run.set_mode("iid"), chains.set_mode("iid")
    run.set_mode("shuffle"), chains.set_mode("shuffle")   # a shuffle epoch in progress is abandoned in both
    for B in (9, 9, 9, 9, 9):
        a, b = run.next_batch(B), chains.next_batch(B)
        assert b.shape[1] == a.shape[0]
    assert (run.epochs_done, run.pos, run.samples) == (chains.epochs_done, chains.pos, chains.samples)
