"""What both of bsim's apps (the main one and the race's) do around their runner: its frames and events
coming in, controls going out, the keys common to both, questions, quitting, signals.

A mixin for a Textual App that holds a ``runner`` (bsim.runner.Runner or bsim.race.runner.RaceRunner,
anything with ``submit()`` and ``stop()``): the runner's thread posts FrameReady and RunnerEvent (each app
handles them in ``on_frame_ready`` and ``on_runner_event``); keys send controls through ``send``; q,
SIGTERM and SIGHUP stop the runner first (a recording in progress is written), then the app exits (0, or
128 + the signal's number); unmounting restores the signal handlers and the GIL's switch interval the app
set. A question (AskScreen) takes the keys of the burst that opened it.
"""

from __future__ import annotations

import sys

from textual.binding import Binding
from textual.message import Message

from bsim import controls
from bsim.app.screens import AskScreen
from bsim.app.signals import forget_signals

#: GIL switch interval while the runner thread trains (seconds; Python's default is 0.005)
SWITCH_INTERVAL = 0.001

_SPEED = Binding.Group("speed")
#: < and > in both apps' footers (grouped: "< > slower faster")
SPEED_KEYS = [
    Binding("less_than_sign", "slower", "slower", key_display="<", group=_SPEED),
    Binding("greater_than_sign", "faster", "faster", key_display=">", group=_SPEED),
]
#: the last keys of both apps: an SVG of the screen, the help, quitting
CLOSING_KEYS = [
    Binding("ctrl+s", "screenshot_svg", "SVG", show=False),
    Binding("question_mark", "help", "help", key_display="?"),
    Binding("q", "quit", "quit"),
]


class FrameReady(Message):
    """A frame the runner published (posted from its thread)."""

    def __init__(self, frame):
        super().__init__()
        self.frame = frame


class RunnerEvent(Message):
    """A notice from the runner: ``kind`` is "notice", "error" or "caption"."""

    def __init__(self, kind: str, text: str):
        super().__init__()
        self.kind, self.text = kind, text


class RunnerLifecycle:
    """Owns the end of an app's runner and the one open question. May touch: ``self.runner``, the screen stack."""

    runner = None
    _urgent = False

    def share_the_gil(self) -> None:
        """While the runner thread trains: a short GIL switch interval, so that the screen and the keyboard
        take the GIL back within ~1 ms instead of 5 ms at every hop (restored at unmount)."""
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)

    # runner -> screen (called on the runner's thread: post_message is thread-safe)
    def _post_frame(self, frame) -> None:
        self.post_message(FrameReady(frame))

    def _post_event(self, kind: str, text: str) -> None:
        self.post_message(RunnerEvent(kind, text))

    # screen -> runner
    def send(self, item) -> None:
        """Hand a control or an action to the runner; the next frame is drawn before it goes on."""
        if self.runner is None:
            self._notice("error", "not started yet")
            return
        self._urgent = True
        self.runner.submit(item)

    def on_plane_wanted(self, message) -> None:
        """A panel needs the loss on a grid of the parameter plane (bsim.app.widgets.ball.PlaneWanted)."""
        if self.runner is not None:
            self.runner.submit(message.request)

    def action_toggle_pause(self) -> None:
        self.send(controls.TogglePause())

    def action_step(self) -> None:
        self.send(controls.Step())

    def action_faster(self) -> None:
        self.send(controls.Faster())

    def action_slower(self) -> None:
        self.send(controls.Slower())

    def action_toggle_recording(self) -> None:
        self.send(controls.ToggleRecording(None))

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
