"""The race's command palette under a key burst (issue 19, item 14): ctrl+p, 'quit', then Enter, Enter and ~200
keys in one write, as a paste delivers them. The palette's search, countdowns and key bindings ran after its
dismissal and raised NoMatches ('CommandList') while the app quit: a Textual traceback on the terminal, in 2 of
4 bursts.

The screen is read through a terminal emulator (pyte), as a person sees it: the palette's line "quit (q)" is
drawn in pieces, which a search of the raw stream can miss."""

from __future__ import annotations

import time

import pexpect
import pyte
import pytest
from support.race import drive_race
from support.terminal import Terminal
from textual.command import CommandInput, CommandList, CommandPalette
from textual.worker import WorkerState

# keys the palette and the race both take without opening a question: cursor down/up, letters the race ignores
TAIL = "".join(("j", "k", "\x1b[B", "\x1b[A", "g", "h")[i % 6] for i in range(190))


class Screen:
    """The race in a pty, its output fed to a 120x36 terminal emulator; ``raw`` keeps every byte it wrote."""

    def __init__(self, tmp_path):
        self.term = Terminal(("race", "default", "--batch-sizes", "8,64,512"), tmp_path)
        self.screen = pyte.Screen(120, 36)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    def pump(self, seconds: float) -> bool:
        """Read for ``seconds``; True as soon as the program has ended."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                chunk = self.term.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                return True
            self.raw += chunk
            self.stream.feed(chunk)
        return False

    def wait_for(self, words: str, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while words not in self.text:
            assert time.monotonic() < end and not self.pump(0.2), f"{words!r} never shown:\n{self.text}"


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(2))
def test_a_key_burst_that_quits_through_the_race_palette_prints_no_traceback(tmp_path, attempt):
    race = Screen(tmp_path)
    race.wait_for("step")
    race.term.child.send("\x10quit")
    race.wait_for("quit (q)")                 # the palette lists Quit, so the first Enter picks it
    race.term.child.send("\r\r" + TAIL)
    ended = race.pump(30)
    assert ended, f"still running 30 s after the burst:\n{race.text}"
    race.term.child.wait()
    assert "NoMatches" not in race.raw and "Traceback" not in race.raw, race.text
    assert race.term.child.exitstatus == 0


@pytest.mark.slow
def test_the_race_palette_once_dismissed_stops_searching_and_its_late_callbacks_touch_no_removed_list(tmp_path):
    """What the burst did at random, in order: a search in flight, the palette dismissed by its choice, then its
    search worker's and key bindings' callbacks arriving after its list was removed with it."""
    async def script(d):
        await d.press("ctrl+p")
        palette = d.app.screen
        assert isinstance(palette, CommandPalette)
        palette.query_one(CommandInput).value = "quit"          # a search starts in a worker
        for _ in range(50):
            await d.pilot.pause(0.02)
            if palette.query_one(CommandList).highlighted is not None:
                break
        palette.query_one(CommandInput).value = "sampling"      # and another one, still running
        palette.dismiss()
        await d.pilot.pause(0.1)
        assert not isinstance(d.app.screen, CommandPalette)
        assert all(w.state in (WorkerState.CANCELLED, WorkerState.SUCCESS, WorkerState.ERROR)
                   for w in palette.workers), "its search still runs"
        assert not palette.children, "its list was not removed with it"
        palette._watch__list_visible()                        # late: the search's end shows/hides the list
        await palette._watch__show_busy()                     # late: the busy countdown
        palette._action_cursor_down()                         # late: a key of the burst
        palette._action_command_list("cursor_up")
        return d.app.screen
    _app, screen = drive_race(tmp_path, script)
    assert not isinstance(screen, CommandPalette)
