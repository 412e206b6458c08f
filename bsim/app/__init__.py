"""The Textual app: ``run_app(scenario, record=None, replay=False) -> exit code``."""

from __future__ import annotations


def run_app(scenario, record: str | None = None, replay: bool = False) -> int:
    """Open the app on a scenario (overrides applied) and train; returns the exit code.

    ``record``: a path to record into from step 0 (``--record``). ``replay``: the
    scenario is a recording: its timeline drives the run, the app stops at each
    caption until space, and any setting you change takes over (a live run).
    Bad input (a data file that cannot be read) is a one-line ``BsimInputError``
    raised before the terminal is taken over.
    """
    import torch

    from bsim.app.app import BsimApp
    from bsim.simulation import Simulation

    torch.set_num_threads(1)   # leave a core for the screen
    sim = Simulation(scenario)
    app = BsimApp(sim, scenario=scenario, record=record, replay=replay)
    result = app.run()
    return int(app.return_code or 0) if result is None else int(result)


__all__ = ["run_app"]
