"""Driving the app in tests: a small scenario, the screen as text, a paused app stepped by the test,
the command palette."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console
from textual.command import CommandInput, CommandList, CommandPalette

from bsim.app.app import BsimApp
from bsim.app.screens import AskScreen
from bsim.scenario import find_scenario
from bsim.simulation import Simulation


def small(name="default", **opt):
    sc = find_scenario(name)
    sc.problem.n_train, sc.problem.n_test = 256, 64
    for k, v in opt.items():
        setattr(sc.optimizer, k, v)
    return sc


def screen_text(app) -> str:
    """The screen as plain text, as a terminal would show it."""
    w, h = app.size
    con = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                  record=True, legacy_windows=False, safe_box=False)
    from bsim.app.compositor import screen_update
    con.print(screen_update(app, with_background=True))
    return con.export_text(styles=False)


def panel_text(app, panel_id: str) -> str:
    panel = app.query_one(f"#{panel_id}")
    return "\n".join(panel.render_line(y).text for y in range(panel.size.height))


class PilotDriver:
    """What a test does to either app: press keys, answer a question, read the screen and the notices."""

    def __init__(self, app, pilot, tmp: Path):
        self.app, self.pilot, self.tmp = app, pilot, tmp

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.pilot.pause()

    async def answer(self, text: str) -> None:
        """Type into the open question (its field starts with the current value, selected) and press Enter."""
        assert isinstance(self.app.screen, AskScreen)
        if len(text) > 32:      # a long answer pasted, not typed: 300 key presses take ~20 s under the pilot
            from textual.widgets import Input
            self.app.screen.query_one(Input).value = text
        else:
            await self.pilot.press(*text)
        await self.press("enter")

    @property
    def notice(self) -> str:
        return self.app.notices[-1][1] if self.app.notices else ""

    @property
    def errors(self) -> list[str]:
        return [t for k, t in self.app.notices if k == "error"]

    @property
    def text(self) -> str:
        return screen_text(self.app)

    def panel(self, panel_id: str) -> str:
        return panel_text(self.app, panel_id)


class Driver(PilotDriver):
    """The run screen: its simulation, stepped by the test."""

    @property
    def sim(self):
        return self.app.runner.sim

    async def steps(self, n: int) -> None:
        self.app.runner.advance(n)
        await self.pilot.pause()

    type_answer = PilotDriver.answer


def drive(tmp_path, script, sc=None, size=(120, 36), **kw):
    """Run ``script(driver)`` in the app headless (paused, no thread, no wall-clock rates)."""
    sc = sc or small()
    kw.setdefault("paused", True)
    out = {}

    async def go():
        kw.setdefault("threaded", False)
        app = BsimApp(Simulation(sc), scenario=sc, timing=False,
                      screenshots_dir=tmp_path / "screenshots", recordings_dir=tmp_path / "recordings", **kw)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            d = Driver(app, pilot, tmp_path)
            out["result"] = await script(d)
        out["app"] = app
    asyncio.run(go())
    return out["app"], out.get("result")


async def palette(d: Driver, title: str) -> None:
    """Open the palette, enter the command's title in its search field, take the first match.

    The title is put into the field at once rather than key by key (each key
    press waits for the app to go idle, and the palette searches on every one).
    """
    await d.press("ctrl+p")
    assert isinstance(d.app.screen, CommandPalette)
    d.app.screen.query_one(CommandInput).value = title
    for _ in range(50):              # the palette searches in a worker: wait for the hit
        await d.pilot.pause(0.02)
        highlighted = d.app.screen.query_one(CommandList).highlighted
        if highlighted is not None:
            break
    await d.press("enter")
    assert not isinstance(d.app.screen, CommandPalette)


def titles(app) -> list[str]:
    return [c.title for c in app.get_system_commands(app.screen)]


def cut_words(lines, items) -> list[str]:
    """Lines that end in a word or number of one of ``items`` cut short (the border took its end): a line ending
    in a strict beginning of an item that stops inside a word, after a space or at the line's start."""
    cut = []
    for line in lines:
        end = line.rstrip()
        for item in items:
            for k in range(2, len(item)):
                mid_word = item[k - 1] != " " and item[k] != " "
                if mid_word and end.endswith(item[:k]) and (len(end) == k or end[-k - 1] == " "):
                    cut.append(f"{end!r} cuts {item!r}")
    return cut
