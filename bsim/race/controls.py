"""The race's own controls, beside bsim.controls' Pause, Resume, TogglePause, Step, Faster and Slower.

A screen submits them to the RaceRunner (``runner.submit(AddLane(256))``); they change which lanes
race, never a lane's settings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AddLane:
    """A new lane at this batch size, from theta_0: it takes every step until it has caught up (a)."""

    batch_size: int


@dataclass(frozen=True)
class RemoveLane:
    """Take the lane of this batch size out of the race (x); the last lane stays."""

    batch_size: int
