"""Simulation.apply calls each setting action's own method (a match on the action's type, no method names).

Every row of actions.SETTINGS (a timeline event key) reaches the simulation, so that a key, a
timeline event and a replayed recording change the same setting; anything else is an ActionError.
"""

from __future__ import annotations

import pytest

from bsim import actions
from bsim.scenario import parse_scenario
from bsim.simulation import Simulation

SMALL = '[problem]\nkind = "linreg"\nn_train = 64\nn_test = 16\ndim = 2\n\n[optimizer]\nlr = 0.1\nbatch_size = 8\n'

#: event key -> (a value other than the small scenario's, what the simulation shows after it)
CHANGES = {
    "problem": ("logreg", lambda sim: sim.problem.kind),
    "reset": (True, lambda sim: sim.step_count == 0),
    "sampling": ("iid", lambda sim: sim.sampling),
    "momentum": (0.5, lambda sim: sim.momentum),
    "lr_scaling": ("sqrt", lambda sim: sim.lr_scaling),
    "batch_size": (16, lambda sim: sim.batch_size),
    "lr": (0.02, lambda sim: sim.lr),
    "chains": (4, lambda sim: sim.chains),
}


def small_sim() -> Simulation:
    sc = parse_scenario(SMALL)
    sc.device = "cpu"
    sim = Simulation(sc, stats=False)
    for _ in range(3):
        assert sim.step()
    return sim


def test_every_setting_of_the_table_is_listed_here():
    assert [s.event_key for s in actions.SETTINGS] == list(CHANGES)


@pytest.mark.parametrize("setting", actions.SETTINGS, ids=lambda s: s.event_key)
def test_each_setting_action_reaches_its_setting(setting):
    value, shown = CHANGES[setting.event_key]
    sim = small_sim()
    before = shown(sim)
    action = setting.action() if setting.field is None else setting.action(value)
    notice = sim.apply(action)
    assert shown(sim) == value and shown(sim) != before
    assert notice and "\n" not in notice


@pytest.mark.parametrize("item", [actions.ScaleBatchSize(2), actions.Caption("a caption"), "batch_size"])
def test_what_is_no_absolute_setting_action_is_an_action_error(item):
    """A relative action goes through actions.absolute first (the runner does): apply refuses it as is."""
    sim = small_sim()
    with pytest.raises(actions.ActionError, match="unknown action"):
        sim.apply(item)
    assert sim.batch_size == 8 and sim.step_count == 3
