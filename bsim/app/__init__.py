"""The Textual app: ``run_app(scenario, record=None, replay=False) -> exit code``."""

from __future__ import annotations


def run_app(scenario, record: str | None = None, replay: bool = False, pace: int | None = None,
            theme: str | None = None, served: bool = False) -> int:
    """Open the app on a scenario (overrides applied) and train; returns the exit code.

    ``record``: a path to record into from step 0 (``--record``). ``replay``: the
    scenario is a recording: its timeline drives the run, the app stops at each
    caption until space, and any setting you change takes over (a live run).
    ``pace``: a steps/s cap to start at (a replay's default: ``REPLAY_PACE``). ``theme``: a Textual
    theme's name (``bsim-projector``: the high-contrast light one). ``served``: under ``bsim serve``.
    Bad input (a data file that cannot be read, an unknown theme) is a one-line ``BsimInputError``
    raised before the terminal is taken over.
    """
    import torch

    from bsim.app.app import BsimApp
    from bsim.app.base import run_themed
    from bsim.errors import BsimInputError
    from bsim.simulation import Simulation

    torch.set_num_threads(1)   # leave a core for the screen
    if served:
        from bsim.app.serve import check_served_scenario
        from pathlib import Path
        if (why := check_served_scenario(scenario, Path.cwd())) is not None:
            raise BsimInputError(f"cannot serve that scenario: {why}")
    sim = Simulation(scenario)
    app = BsimApp(sim, scenario=scenario, record=record, replay=replay, speed=pace, served=served)
    return run_themed(app, theme)


__all__ = ["run_app"]
