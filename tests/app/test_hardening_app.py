"""Key bursts in the app (issue 12): keys typed faster than a modal screen closes never crash it.

`b`, `16`, Enter, Enter sent as one burst (a paste, a fast typist, a terminal that
batches input), or Enter twice after ctrl+p: the second Enter must not pop a screen
that is no longer there (Textual's ScreenStackError).
"""

from __future__ import annotations

from support.app import drive
from textual import events

from bsim.app.screens import AskScreen


def burst(app, *keys: str) -> None:
    """Queue every key at once, as a terminal delivers a paste: no wait for the app between keys
    (Pilot.press waits until the app is idle after each key, which hides the race)."""
    chars = {"enter": "\r", "escape": "\x1b"}
    for key in keys:
        event = events.Key(key, chars.get(key, key if len(key) == 1 else None))
        event.set_sender(app)
        app._driver.send_message(event)


def test_burst_b_16_enter_enter_sets_the_batch_size_once_and_keeps_running(tmp_path):
    async def script(d):
        burst(d.app, "b", "1", "6", "enter", "enter")
        for _ in range(5):
            await d.pilot.pause()
        assert d.sim.batch_size == 16
        assert not isinstance(d.app.screen, AskScreen)
        assert d.app.is_running and d.app.return_code in (None, 0)
        await d.press("n")                                 # the app still answers keys
        assert d.sim.step_count == 1
    app, _ = drive(tmp_path, script)
    assert app.return_code in (None, 0)


def test_two_enters_after_ctrl_p_do_not_pop_the_main_screen(tmp_path):
    async def script(d):
        burst(d.app, "ctrl+p", "enter", "enter")
        for _ in range(5):
            await d.pilot.pause()
        assert d.app.is_running and not d.app.screen_stack[1:]     # the palette closed, the main screen stays
        assert len(d.app.notices) <= 1                             # its command ran at most once
        await d.press("escape", "escape")
        await d.press("n")
        assert d.sim.step_count == 1
    app, _ = drive(tmp_path, script)
    assert app.return_code in (None, 0)
