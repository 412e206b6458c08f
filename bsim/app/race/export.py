"""The README's picture of a race: the race screen after a fixed number of lane steps, as SVG.

Stepped without a thread and without wall-clock numbers (as bsim.app.export does for the main
screen), so the same scenario and steps give the same file byte for byte.
"""

from __future__ import annotations

import asyncio

#: the README's race picture: (file name in screenshots/, bundled scenario, lanes' batch sizes, lane steps)
README_RACE = ("race.svg", "default", (8, 64, 512), 20000)
#: lane steps between published frames (a frame as the live screen would draw one)
CHUNK = 200


def race_svg(scenario: str, batch_sizes, lane_steps: int, size: tuple[int, int] = (120, 36),
             whole_race: bool = True) -> str:
    """The race screen on a bundled scenario after ``lane_steps`` lane steps (the loss over the whole race)."""
    return asyncio.run(_shoot(scenario, batch_sizes, lane_steps, size, whole_race))


async def _shoot(scenario: str, batch_sizes, lane_steps: int, size, whole_race: bool) -> str:
    import torch

    from bsim.app.race.app import RaceApp
    from bsim.race.race import Race
    from bsim.scenario import find_scenario

    torch.set_num_threads(1)
    sc = find_scenario(scenario)
    app = RaceApp(Race(sc, list(batch_sizes)), threaded=False, paused=True, timing=False,
                  screenshots_dir=".", recordings_dir=".")
    async with app.run_test(size=size) as pilot:
        left = lane_steps
        while left > 0:
            left -= app.runner.advance(min(CHUNK, left)) or left
            await pilot.pause()
        if whole_race:
            await pilot.press("w")
        await pilot.pause()
        return app.export_screenshot(title=f"bsim race · {sc.title} · {lane_steps:,} lane steps")
