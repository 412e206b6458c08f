"""What both of bsim's apps (the main one and the race's) do around their runner: questions, quitting, signals.

A mixin for a Textual App that holds a ``runner`` (bsim.runner.Runner or bsim.race.runner.RaceRunner,
anything with ``stop()``): q, SIGTERM and SIGHUP stop the runner first (a recording in progress is
written), then the app exits (0, or 128 + the signal's number); unmounting restores the signal handlers
and the GIL's switch interval the app set. A question (AskScreen) takes the keys of the burst that opened it.
"""

from __future__ import annotations

import sys

from bsim.app.screens import AskScreen
from bsim.app.signals import forget_signals


class RunnerLifecycle:
    """Owns the end of an app's runner and the one open question. May touch: ``self.runner``, the screen stack."""

    runner = None

    def on_key(self, event) -> None:
        """Keys of one burst that reached the main screen before the question opened go to the question."""
        if isinstance(self.screen, AskScreen):
            self.screen.take_key(event)

    def ask(self, prompt: str, callback, value: str = "") -> None:
        """Open one question (a second one while it is open is ignored); ``callback`` gets the answer."""
        if isinstance(self.screen, AskScreen):
            return
        self.push_screen(AskScreen(prompt, value=value), callback)

    async def action_quit(self) -> None:
        self._stop_runner()
        self.exit(0)

    def _stop_runner(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            runner.stop()

    def quit_on_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP: quit as q does (a recording written, the terminal restored); exit 128 + signum."""
        self._stop_runner()
        self.exit(128 + signum)

    def on_unmount(self) -> None:
        forget_signals(getattr(self, "_signals", ()))
        self._stop_runner()
        if getattr(self, "_switch_interval", None):
            sys.setswitchinterval(self._switch_interval)
