"""Driving the race screen in tests: a race on a bundled scenario, the app paused and stepped by the test."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bsim.app.race.app import RaceApp
from bsim.race.race import Race
from bsim.scenario import find_scenario
from support.app import panel_text, screen_text


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


class RaceDriver:
    def __init__(self, app: RaceApp, pilot, tmp: Path):
        self.app, self.pilot, self.tmp = app, pilot, tmp

    async def steps(self, n: int, chunk: int = 50) -> None:
        """n lane steps in the lockstep's order, a frame drawn every ``chunk``."""
        while n > 0:
            self.app.runner.advance(min(chunk, n))
            n -= chunk
            await self.pilot.pause()

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.pilot.pause()

    async def answer(self, text: str) -> None:
        """Type into the open question (replacing its pre-filled value) and press Enter."""
        await self.pilot.press(*text)
        await self.press("enter")

    @property
    def lanes(self) -> dict[int, int]:
        """Each lane's batch size -> its step count, as last published."""
        return {lane.batch_size: lane.frame.step for lane in self.app.runner.latest.lanes}

    @property
    def errors(self) -> list[str]:
        return [t for k, t in self.app.notices if k == "error"]

    @property
    def text(self) -> str:
        return screen_text(self.app)

    def panel(self, panel_id: str) -> str:
        return panel_text(self.app, panel_id)


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
