"""Driving the race screen in tests: a race on a bundled scenario, the app paused and stepped by the test."""

from __future__ import annotations

import asyncio

from bsim.app.race.app import RaceApp
from bsim.race.race import Race
from bsim.scenario import find_scenario
from support.app import PilotDriver


def race_of(name: str = "default", sizes=(8, 64, 512), n_train: int | None = 512, lr: float | None = None,
            **kw) -> Race:
    """A race on a bundled scenario (its training set cut to ``n_train`` for speed; None keeps it; ``lr``: the
    scenario's lr, which the lanes' lr rule scales from)."""
    sc = find_scenario(name)
    if n_train is not None:
        sc.problem.n_train, sc.problem.n_test = n_train, 64
    if lr is not None:
        sc.optimizer.lr = lr
    return Race(sc, list(sizes), **kw)


class RaceDriver(PilotDriver):
    """The race screen: its lanes, stepped by the test in the lockstep's order."""

    async def steps(self, n: int, chunk: int = 50) -> None:
        """n lane steps in the lockstep's order, a frame drawn every ``chunk``."""
        while n > 0:
            self.app.runner.advance(min(chunk, n))
            n -= chunk
            await self.pilot.pause()

    @property
    def lanes(self) -> dict[int, int]:
        """Each lane's batch size -> its step count, as last published."""
        return {lane.batch_size: lane.frame.step for lane in self.app.runner.latest.lanes}



def drive_race(tmp_path, script, race: Race | None = None, size=(120, 36), **kw):
    """Run ``script(driver)`` in the race screen headless (paused, no thread, no wall-clock numbers)."""
    race = race or race_of()
    kw.setdefault("paused", True)
    kw.setdefault("threaded", False)
    out = {}

    async def go():
        app = RaceApp(race, timing=False, screenshots_dir=tmp_path / "screenshots",
                      recordings_dir=tmp_path / "recordings", **kw)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            out["result"] = await script(RaceDriver(app, pilot, tmp_path))
        out["app"] = app
    asyncio.run(go())
    return out["app"], out.get("result")
