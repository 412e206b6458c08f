"""e's rebuild of the ensemble mid-run: the run (chain 0) is untouched, the chains start where it stands."""

from __future__ import annotations

import torch

from bsim.ensemble import rebuild
from bsim.scenario import find_scenario
from bsim.simulation import Simulation


def test_rebuild_mid_run_leaves_the_run_bit_for_bit_and_starts_at_its_theta():
    sc = find_scenario("default")
    plain, with_chains = Simulation(sc), Simulation(sc)
    plain.run(150)
    with_chains.run(150)
    assert rebuild(with_chains, 64) == "chains: 64 from step 150"
    ens = with_chains.ensemble
    assert torch.equal(ens.theta, with_chains.theta.expand(63, -1))        # all at the run's theta
    assert ens.sampler.samples == with_chains.sampler.samples               # in step with its epoch
    plain.run(300)
    with_chains.run(300)
    assert torch.equal(plain.theta, with_chains.theta)                      # chain 0 is the run, bit for bit
    assert not torch.equal(ens.theta[0], ens.theta[1])                      # each chain its own batches
    assert rebuild(with_chains) == "chains: 256 from step 450"             # None: the next of 1, 64, 256, 1024
    assert rebuild(with_chains, 1) == "chains: 1 (the run alone)" and with_chains.ensemble is None
    assert with_chains.frame().chains is None
