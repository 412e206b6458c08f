"""Actions: what the keyboard, the timeline and the recorder ask of the simulation.

Actions are applied only between steps. Each returns a short notice that
says what changed ("batch size 8 -> 64, lr 0.05 -> 0.4 (linear scaling)").

``SETTINGS`` is the one table that ties each setting action to its timeline
event key and field: the timeline reads events into actions with it, and the
recorder writes actions into events with it. ``Simulation.apply`` calls the
method of each action type explicitly (a ``match``). Relative actions (``[``
``]`` ``-`` ``+``) are resolved against the state they reach (``absolute``),
and the absolute action that ran is what a recording keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from bsim.scenario import LR_SCALINGS, SAMPLINGS


class ActionError(ValueError):
    """An action with a value the simulation cannot take (shown as a notice)."""


@dataclass(frozen=True)
class SetBatchSize:
    batch_size: int


@dataclass(frozen=True)
class SetLR:
    lr: float


@dataclass(frozen=True)
class SetLRScaling:
    mode: str


@dataclass(frozen=True)
class SetMomentum:
    momentum: float


@dataclass(frozen=True)
class SetSampling:
    mode: str


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class SetChains:
    """Rebuild the ensemble with ``chains`` chains from this step (1 removes it; bsim.ensemble.rebuild).

    Chain 0 is the run: its trajectory and its own columns never depend on it. Recorded and
    replayed like the other settings (event key ``chains``), so that a replay rebuilds the
    chains at the same step and the chains' columns come out as recorded.
    """

    chains: int


@dataclass(frozen=True)
class SwitchProblem:
    kind: str


@dataclass(frozen=True)
class ScaleBatchSize:
    """Multiply the batch size in force when the action is applied (``[`` halves, ``]`` doubles)."""

    factor: float


@dataclass(frozen=True)
class ScaleLR:
    """Multiply the lr in force when the action is applied (``-`` halves, ``+`` doubles)."""

    factor: float


@dataclass(frozen=True)
class CycleSampling:
    """The next sampling mode after the one in force (``s``)."""


@dataclass(frozen=True)
class CycleLRScaling:
    """The next lr scaling after the one in force (``l``)."""


#: the momenta ``m`` steps through: plain SGD, then the heavy ball at 0.5 and 0.9 (Polyak 1964)
MOMENTA: tuple[float, ...] = (0.0, 0.5, 0.9)


@dataclass(frozen=True)
class CycleMomentum:
    """The next momentum of MOMENTA above the one in force, back to 0 after 0.9 (``m``)."""


#: the chain counts ``e`` cycles through (1: the run alone)
CHAIN_COUNTS: tuple[int, ...] = (1, 64, 256, 1024)


@dataclass(frozen=True)
class CycleChains:
    """The next of CHAIN_COUNTS above the chain count in force, back to 1 after 1024 (``e``)."""


#: what ``Simulation.apply`` takes: the absolute setting actions (the relative ones go through ``absolute``)
Action = SetBatchSize | SetLR | SetLRScaling | SetMomentum | SetSampling | Reset | SwitchProblem | SetChains


class Setting(NamedTuple):
    """One row of the table: a timeline event key, the action class it becomes, the action's field."""

    event_key: str
    action: type
    field: str | None          # the action's one field (None: an action without a value, e.g. Reset)


#: in the order the actions of one timeline event are applied (problem and reset first)
SETTINGS: tuple[Setting, ...] = (
    Setting("problem", SwitchProblem, "kind"),
    Setting("reset", Reset, None),
    Setting("sampling", SetSampling, "mode"),
    Setting("momentum", SetMomentum, "momentum"),
    Setting("lr_scaling", SetLRScaling, "mode"),
    Setting("batch_size", SetBatchSize, "batch_size"),
    Setting("lr", SetLR, "lr"),
    Setting("chains", SetChains, "chains"),   # last: the chains start from the event's settings
)
BY_ACTION: dict[type, Setting] = {s.action: s for s in SETTINGS}
SETTING_ACTIONS: tuple[type, ...] = tuple(BY_ACTION) + (ScaleBatchSize, ScaleLR, CycleSampling, CycleLRScaling,
                                                        CycleMomentum, CycleChains)


def event_actions(ev) -> list[Action]:
    """The actions of a timeline event, in the table's order."""
    out: list[Action] = []
    for s in SETTINGS:
        value = getattr(ev, s.event_key)
        if s.field is None:
            if value:
                out.append(s.action())
        elif value is not None:
            out.append(s.action(value))
    return out


def event_fields(action) -> dict:
    """The timeline event fields that record an action: {"batch_size": 16}, {"reset": True}."""
    s = BY_ACTION.get(type(action))
    if s is None:
        raise ActionError(f"cannot record {action!r}: expected a setting action")
    return {s.event_key: True if s.field is None else getattr(action, s.field)}


def absolute(action, settings):
    """A relative action made absolute against the settings in force; absolute actions pass through.

    ``settings`` has the simulation's batch_size, lr, n_train, sampling, lr_scaling, momentum and chains.
    ``[`` at B = 1 and ``]`` at B = N change nothing: an ActionError says so.
    """
    if isinstance(action, ScaleBatchSize):
        batch_size, n_train = settings.batch_size, settings.n_train
        new = max(1, min(n_train, int(batch_size * action.factor)))
        if new == batch_size:
            edge = "1, the smallest" if action.factor < 1 else f"N = {n_train}, the whole training set"
            raise ActionError(f"batch size is already {edge}")
        return SetBatchSize(new)
    if isinstance(action, ScaleLR):
        return SetLR(settings.lr * action.factor)
    if isinstance(action, CycleSampling):
        return SetSampling(_after(SAMPLINGS, settings.sampling))
    if isinstance(action, CycleLRScaling):
        return SetLRScaling(_after(LR_SCALINGS, settings.lr_scaling))
    if isinstance(action, CycleMomentum):
        # a momentum typed with M (0.7) goes on to the next of MOMENTA above it (0.9)
        return SetMomentum(next((m for m in MOMENTA if m > settings.momentum), MOMENTA[0]))
    if isinstance(action, CycleChains):
        return SetChains(next((k for k in CHAIN_COUNTS if k > settings.chains), CHAIN_COUNTS[0]))
    return action


def _after(options: tuple[str, ...], current: str) -> str:
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


# What a recording keeps besides actions (not applied to the simulation).
@dataclass(frozen=True)
class Caption:
    text: str


@dataclass(frozen=True)
class PausePoint:
    pass
