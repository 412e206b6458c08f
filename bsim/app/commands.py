"""The command palette (ctrl+p): every action of the app by name (bsim.app.keymap), and its guard."""

from __future__ import annotations

from contextlib import suppress
from functools import partial

from textual.app import SystemCommand
from textual.command import CommandPalette
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Button, Input, OptionList

from bsim.app import keymap


class OnceCommandPalette(CommandPalette):
    """Textual's command palette, that runs one command and closes once.

    Two Enters in one burst after ctrl+p queue two submits: Textual's palette
    dismisses itself on the first and again on the second, which pops the app's
    own screen (ScreenStackError), and would run the command twice. Once the
    palette has dismissed itself (or is not the top screen), a submit, a button
    press or an option choice reaching it is dropped.
    """

    _CHOICES = (Input.Submitted, Button.Pressed, OptionList.OptionSelected)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._chosen = False

    async def _on_message(self, message: Message) -> None:
        if isinstance(message, self._CHOICES) and (self._chosen or not self.is_active):
            message.stop()
            return
        await super()._on_message(message)

    def dismiss(self, result=None):
        self._chosen = True
        # its searches and countdowns would query its list after the app began to quit (NoMatches, 'CommandList')
        self._cancel_gather_commands()
        self._stop_no_matches_countdown()
        self._stop_busy_countdown()
        return super().dismiss(result)

    def _watch__list_visible(self) -> None:
        with suppress(NoMatches):          # a search ended while the palette was being removed
            super()._watch__list_visible()

    async def _watch__show_busy(self) -> None:
        with suppress(NoMatches):
            await super()._watch__show_busy()

    def _action_cursor_down(self) -> None:
        with suppress(NoMatches):          # a key of the burst reaching a palette already emptied
            super()._action_cursor_down()

    def _action_command_list(self, action: str) -> None:
        with suppress(NoMatches):
            super()._action_command_list(action)


def palette_commands(app, keys: str):
    """A SystemCommand for each palette row of ``keys`` (bsim.app.keymap.MAIN or RACE): its title, its help
    and key, and the app's action it runs."""
    for title, help, action, arguments, discover in keymap.palette(keys):
        yield SystemCommand(title, help, partial(getattr(app, f"action_{action}"), *arguments), discover=discover)
