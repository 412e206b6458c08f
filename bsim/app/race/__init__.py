"""The race screen (``bsim race`` without --headless): ``run_race_app(race, ...) -> exit code``."""

from __future__ import annotations


def run_race_app(race, *, paused: bool = False, speed: int | None = None, theme: str | None = None,
                 record: str | None = None, timing: bool = True, replay: bool = False) -> int:
    """Open the race screen on ``race`` (a bsim.race.race.Race, not yet stepped by anyone else); the exit code.

    ``paused``: start paused. ``speed``: a cap on lane steps per second (None: as fast as it goes; a
    replay starts at bsim.app.base.REPLAY_PACE). ``theme``: a Textual theme's name. ``record``: record the
    race into this file from the start. ``timing``: False leaves wall-clock numbers out (--no-timing).
    ``replay``: the race is a recording's, each lane stopping at its recorded step (``bsim replay``).
    An unknown theme is a one-line ``BsimInputError`` raised before the terminal is taken over.
    """
    import torch

    from bsim.app.base import run_themed
    from bsim.app.race.app import RaceApp

    torch.set_num_threads(1)   # leave a core for the screen
    app = RaceApp(race, paused=paused, speed=speed, record=record, timing=timing, replay=replay)
    return run_themed(app, theme)


__all__ = ["run_race_app"]
