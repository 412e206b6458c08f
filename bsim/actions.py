"""Actions: what the keyboard, the timeline and the recorder ask of the simulation.

Actions are applied only between steps. Each returns a short notice that
says what changed ("batch size 8 -> 64, lr 0.05 -> 0.4 (linear scaling)").
"""

from __future__ import annotations

from dataclasses import dataclass


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
class SwitchProblem:
    kind: str


Action = SetBatchSize | SetLR | SetLRScaling | SetMomentum | SetSampling | Reset | SwitchProblem


def event_actions(ev) -> list[Action]:
    """The actions of a timeline event, in a fixed order (problem and reset first)."""
    out: list[Action] = []
    if ev.problem is not None:
        out.append(SwitchProblem(ev.problem))
    if ev.reset:
        out.append(Reset())
    if ev.sampling is not None:
        out.append(SetSampling(ev.sampling))
    if ev.momentum is not None:
        out.append(SetMomentum(ev.momentum))
    if ev.lr_scaling is not None:
        out.append(SetLRScaling(ev.lr_scaling))
    if ev.batch_size is not None:
        out.append(SetBatchSize(ev.batch_size))
    if ev.lr is not None:
        out.append(SetLR(ev.lr))
    return out


# What a recording keeps besides actions (not applied to the simulation).
@dataclass(frozen=True)
class Caption:
    text: str


@dataclass(frozen=True)
class PausePoint:
    pass
