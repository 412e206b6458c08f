"""The timeline: a scenario's events in step order, and the cursor over them.

An event with ``at = k`` is applied after k steps (ticks since the run began,
resets included): step k + 1 is the first taken with it. The timeline is the
one owner of the events of a run: the simulation takes the due ones before a
step, the runner asks what comes next (a caption, a pause), a take-over of a
replay drops the rest, and the recorder writes what is left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from bsim.scenario import Event


class Timeline:
    """Events sorted by ``at`` (stable: one step's events keep their order) and a cursor.

    Owns the event list; nobody else filters or rewrites it. ``due`` moves the
    cursor; the other queries only read.
    """

    def __init__(self, events: Iterable[Event] = ()):
        self._events = sorted((dataclasses.replace(ev) for ev in events), key=lambda ev: ev.at)
        self._next = 0

    @property
    def events(self) -> list[Event]:
        """Copies of every event, applied or not, in order."""
        return [dataclasses.replace(ev) for ev in self._events]

    def __len__(self) -> int:
        return len(self._events)

    def due(self, tick: int) -> list[Event]:
        """The events to apply before the step after ``tick`` steps; the cursor moves past them.

        Events before ``tick`` that were never applied (a timeline loaded mid-run) are skipped.
        """
        out = []
        while self._next < len(self._events) and self._events[self._next].at <= tick:
            ev = self._events[self._next]
            self._next += 1
            if ev.at == tick:
                out.append(ev)
        return out

    def add_applied(self, ev: Event) -> None:
        """An event the run made itself (an adaptive batch-size growth), applied now at ``ev.at``: it goes
        after the events already applied, so that a recorder writes it where a replay applies it."""
        self._events.insert(self._next, dataclasses.replace(ev))
        self._next += 1

    def upcoming(self, tick: int) -> list[Event]:
        """The events that ``due(tick)`` would return, without moving the cursor."""
        return [ev for ev in self._events[self._next:] if ev.at == tick]

    def next_at(self) -> int | None:
        """The step of the next event not yet applied."""
        return self._events[self._next].at if self._next < len(self._events) else None

    def next_caption_at(self, tick: int, after: bool = False) -> int | None:
        """The step of the first caption at ``tick`` or later (strictly later with ``after``)."""
        return next((ev.at for ev in self._events
                     if ev.caption and (ev.at > tick if after else ev.at >= tick)), None)

    def left(self, tick: int) -> int:
        """How many events are at ``tick`` or later."""
        return sum(1 for ev in self._events if ev.at >= tick)

    def drop_from(self, tick: int) -> int:
        """Drop every event at ``tick`` or later (a take-over of a replay); returns how many."""
        keep = [ev for ev in self._events if ev.at < tick]
        dropped = len(self._events) - len(keep)
        self._events = keep
        self._next = min(self._next, len(keep))
        return dropped
