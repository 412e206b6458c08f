"""The one use of Textual's private compositor (bsim.app.compositor): the screen as a terminal gets it."""

import asyncio
import io

from rich.console import Console
from textual.app import App
from textual.screen import ModalScreen
from textual.widgets import Static

from bsim.app.compositor import screen_update


class Base(App):
    def compose(self):
        yield Static("underneath the modal")


class Modal(ModalScreen):
    DEFAULT_CSS = "Modal { align: center bottom; } Modal Static { width: 20; height: 1; }"

    def compose(self):
        yield Static("the modal on top")


def text_of(renderable, size) -> str:
    con = Console(width=size[0], height=size[1], file=io.StringIO(), force_terminal=True, record=True)
    con.print(renderable)
    return con.export_text(styles=False)


def test_screen_update_renders_the_screen_and_with_background_the_screens_below():
    async def run():
        app = Base()
        async with app.run_test(size=(60, 10)) as pilot:
            base = text_of(screen_update(app), app.size)
            app.push_screen(Modal())
            await pilot.pause()
            top = text_of(screen_update(app), app.size)
            both = text_of(screen_update(app, with_background=True), app.size)
        return base, top, both

    base, top, both = asyncio.run(run())
    assert "underneath the modal" in base
    assert "the modal on top" in top and "the modal on top" not in base
    assert "the modal on top" in both and "underneath the modal" in both
