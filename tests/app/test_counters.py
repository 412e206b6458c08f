"""Counters a user reads: step, epoch (samples / N), completed epochs, batch
index within the epoch and batches per epoch, across mid-epoch batch-size
changes, drop_last and the three sampling modes, as the frame shows them.

N = 100 throughout, so every expected number below can be checked by hand.
"""

from __future__ import annotations

import pytest

from bsim.simulation import Simulation
from support import linreg_100


def sim_for(sampling="shuffle", drop_last=False, batch_size=30, timeline=""):
    drop = f'drop_last = {"true" if drop_last else "false"}'
    return Simulation(linreg_100(1, batch_size, sampling, f"{drop}\n{timeline}"))


def counters(sim):
    f = sim.frame(timing=False)
    return (f.step, f.samples, f.epoch, f.epochs_done, f.batch_in_epoch, f.batches_per_epoch, f.batch_size)


def test_shuffle_short_last_batch():
    sim = sim_for()
    assert counters(sim) == (0, 0, 0.0, 0, 0, 4, 30)       # 30+30+30+10: four batches
    got = []
    for _ in range(5):
        sim.step()
        got.append(counters(sim))
    assert got == [
        (1, 30, 0.3, 0, 1, 4, 30),
        (2, 60, 0.6, 0, 2, 4, 30),
        (3, 90, 0.9, 0, 3, 4, 30),
        (4, 100, 1.0, 1, 0, 4, 10),   # the short batch of 10 ends epoch 1
        (5, 130, 1.3, 1, 1, 4, 30),
    ]


def test_shuffle_drop_last_skips_the_remainder():
    sim = sim_for(drop_last=True)
    assert counters(sim)[5] == 3                              # 30+30+30, the 10 left are skipped
    sim.run(3)
    assert counters(sim) == (3, 90, 0.9, 0, 3, 3, 30)
    sim.step()                                                # the remainder is dropped: a new epoch
    assert counters(sim) == (4, 120, 1.2, 1, 1, 3, 30)
    sim.run(2)
    assert counters(sim) == (6, 180, 1.8, 1, 3, 3, 30)


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_mid_epoch_batch_size_change(drop_last):
    sim = sim_for(drop_last=drop_last)
    sim.run(2)                                                # 60 of 100 seen
    sim.set_batch_size(50)
    if drop_last:
        assert counters(sim)[4:6] == (2, 2)                   # 40 left < 50: no more batches
        sim.step()
        assert counters(sim) == (3, 110, 1.1, 1, 1, 2, 50)
    else:
        assert counters(sim)[4:6] == (2, 3)                   # one short batch of 40 to come
        sim.step()
        assert counters(sim) == (3, 100, 1.0, 1, 0, 2, 40)
        sim.step()
        assert counters(sim) == (4, 150, 1.5, 1, 1, 2, 50)
    sim.set_batch_size(20)                                    # mid-epoch again (50 of 100 left), smaller
    bie = counters(sim)[4]
    sizes = [20, 20] if drop_last else [20, 20, 10]           # drop_last skips the 10 left
    assert counters(sim)[5] == bie + len(sizes)
    epochs = counters(sim)[3]
    for b in sizes:
        sim.step()
        assert sim.frame(timing=False).batch_size == b
    assert counters(sim)[3] == epochs + (0 if drop_last else 1)


@pytest.mark.parametrize("sampling", ["iid", "replacement"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_iid_and_replacement_count_epochs_by_samples(sampling, drop_last):
    """drop_last has no remainder to drop here: epochs are every N samples."""
    sim = sim_for(sampling, drop_last)
    got = []
    for _ in range(4):
        sim.step()
        got.append(counters(sim))
    assert got == [
        (1, 30, 0.3, 0, 1, 4, 30),
        (2, 60, 0.6, 0, 2, 4, 30),
        (3, 90, 0.9, 0, 3, 4, 30),
        (4, 120, 1.2, 1, 0, 3, 30),    # the 100th sample was in this batch; 80 more to reach 200
    ]
    sim.set_batch_size(7)
    sim.step()
    # 127 seen: one batch in epoch 2; 73 more at 7 a batch is 11 batches
    assert counters(sim) == (5, 127, 1.27, 1, 1, 12, 7)


def test_reset_zeroes_the_counters_but_not_the_tick():
    sim = sim_for(timeline="[[timeline]]\nat = 6\nbatch_size = 10\n")
    sim.run(5)
    sim.reset()
    assert counters(sim) == (0, 0, 0.0, 0, 0, 4, 30)
    assert sim.tick == 5
    sim.step()                     # tick 5 -> 6, step 1
    assert sim.batch_size == 30
    sim.step()                     # the event at tick 6 applies before this step
    assert counters(sim)[:2] == (2, 40) and sim.frame().batch_size == 10


def test_batch_size_above_n_counts_one_batch_per_epoch():
    sim = sim_for(batch_size=500)
    assert sim.batch_size == 100
    assert any("clamped" in w and "500" in w for w in sim.scenario.warnings)
    sim.run(3)
    assert counters(sim) == (3, 300, 3.0, 3, 0, 1, 100)
