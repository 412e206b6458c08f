"""What every bsim app shares (bsim run's BsimApp, the race's RaceApp, the sweep screen's SweepApp).

``AppBase`` is a Textual App that owns: the themes (the projector theme and its toggle, the charts'
colours), the notice bar, the too-small message, SVG screenshots, the command palette's guard and
its commands (from bsim.app.keymap), the one open question, SIGTERM and SIGHUP, and the end of the
app's runner (bsim.runner.Runner or bsim.race.runner.RaceRunner: anything with ``submit()`` and
``stop()``; the sweep app has none). Each app is a subclass that says what it draws (``compose``),
what it starts (``start``) and which keymap rows it binds (``KEYMAP``).
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from bsim import controls
from bsim.app import themes
from bsim.app.screens import AskScreen
from bsim.app.signals import forget_signals, quit_on_signals

#: below this the app shows a "too small" message instead of the panels
MIN_SIZE = (70, 20)
#: below this width the counters (the race: its status) are narrow and the header drops the device
NARROW_BELOW = 110
#: steps/s a replay starts at: a 1,500-step lecture stop takes 15 s, time to say what the screen shows,
#: and the loss curve and the ball move visibly between two frames (> or < changes it; --pace sets it)
REPLAY_PACE = 100
#: GIL switch interval while the runner thread trains (seconds; Python's default is 0.005)
SWITCH_INTERVAL = 0.001


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


class AppBase(App):
    """A bsim app. Owns: the theme before the projector's, the notices shown (``notices``), the runner's
    end, the signal handlers, the GIL's switch interval while a runner thread trains. May touch:
    ``self.runner`` (submit, stop), the screen stack, the ``#notice`` and ``#too-small`` bars.

    Subclasses set ``KEYMAP`` (bsim.app.keymap.MAIN or RACE: the palette's commands), ``NEEDS`` (the
    too-small message's subject; None: no such check), ``HELP_SCREEN``, ``LOSS_PANEL``, and override ``start`` (called
    once mounted), ``resized`` (after a size change) and ``_notice`` where they show more.
    """

    ENABLE_COMMAND_PALETTE = True
    KEYMAP: str | None = None
    NEEDS: str | None = "bsim"
    HELP_SCREEN: type[Screen] | None = None
    LOSS_PANEL: type | None = None      # the loss chart that w and y change
    SCREENSHOT_PREFIX = "bsim"
    runner = None
    threaded = False
    served = False

    def __init__(self, screenshots_dir: str | Path = "screenshots"):
        super().__init__()
        self.register_theme(themes.PROJECTOR)
        self.chart_remap = None             # bsim's chart colours -> the theme's (set when the theme changes)
        self._theme_before_projector = themes.DEFAULT_THEME
        self.screenshots_dir = Path(screenshots_dir)
        self.notices: list[tuple[str, str]] = []   # (kind, text): every notice shown, oldest first
        self._urgent = False          # a key was pressed: draw the next frame before the runner goes on

    # ------------------------------------------------------------- mounting
    def on_mount(self) -> None:
        if self.threaded:
            self.share_the_gil()
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._on_theme_changed(self.current_theme)
        self._check_size()
        self.start()
        self._signals = () if self.served else quit_on_signals(self)   # served: bsim serve ends it (exit 0)

    def start(self) -> None:
        """What the app starts once mounted (its runner, its first screen)."""

    def share_the_gil(self) -> None:
        """While the runner thread trains: a short GIL switch interval, so that the screen and the keyboard
        take the GIL back within ~1 ms instead of 5 ms at every hop (restored at unmount)."""
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)

    # ------------------------------------------------------------- themes
    def _on_theme_changed(self, theme) -> None:
        """The charts take the theme's colours (bsim.app.themes); each panel redraws."""
        from bsim.app.widgets.panel import Panel, palette_remap
        palette = themes.chart_palette(theme.name, self.get_css_variables())
        self.chart_remap = palette_remap(palette)
        for panel in self.query(Panel):
            panel.restyle()

    def action_toggle_projector(self) -> None:
        """t : the high-contrast light theme for projectors, and back to the theme before it."""
        if self.theme == themes.PROJECTOR_THEME:
            self.theme = self._theme_before_projector
        else:
            self._theme_before_projector = self.theme
            self.theme = themes.PROJECTOR_THEME
        self._notice("notice", f"theme: {self.theme} (t toggles the projector theme; ctrl+p Theme lists all)")

    # ------------------------------------------------------------- size
    def on_resize(self, event) -> None:
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        w, h = size or self.size
        if self.NEEDS is None:
            return
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        self.screen.set_class(small, "-too-small")
        self.screen.set_class(w < NARROW_BELOW, "-narrow")
        self.resized(w, h)
        if small:
            self.query_one("#too-small", Static).update(
                f"The terminal is {w}x{h}: {self.NEEDS} needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}.\n"
                "Make the window larger (it is usable at 80x24, best at 120x36). q quits.")

    def resized(self, width: int, height: int) -> None:
        """What else follows the terminal's size (titles, a status line)."""

    # ------------------------------------------------------------- notices
    def _notice(self, kind: str, text: str) -> None:
        """One line in the notice bar (``kind`` "error" is drawn as one), kept in ``notices``."""
        self.notices.append((kind, text))
        bar = self.query_one("#notice", Static)
        bar.set_class(kind == "error", "-error")
        bar.update(Text(text))              # as written: "[" and "]" are not markup

    # ------------------------------------------------------------- screenshots
    def save_svg(self, path: str | Path) -> Path:
        """Write the screen as SVG, atomically (the folder is made if needed); OSError if it cannot."""
        from bsim.atomic import atomic_write_text
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.export_screenshot())
        return path

    def screenshot(self, prefix: str) -> tuple[str, str]:
        """The screen as SVG into ``screenshots_dir`` (under `bsim serve`: a download); the notice to show."""
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")[:-3]
        name = f"{prefix}-{stamp}.svg"
        if self.is_web:     # under `bsim serve`: the file goes to the browser, not the server's disk
            import io
            self.deliver_text(io.StringIO(self.export_screenshot()), save_filename=name, mime_type="image/svg+xml")
            return "notice", f"screenshot sent to the browser: {name}"
        path = self.screenshots_dir / name
        try:
            self.save_svg(path)
        except OSError as exc:
            return "error", f"cannot write the screenshot {path}: {exc.strerror or exc}"
        return "notice", f"screenshot saved: {name} in {path.parent}"

    def action_screenshot_svg(self) -> None:
        self._notice(*self.screenshot(self.SCREENSHOT_PREFIX))

    # ------------------------------------------------------------- the loss chart's keys (w y)
    def action_toggle_window(self) -> None:
        self._notice("notice", self.query_one(self.LOSS_PANEL).toggle_window())

    def action_toggle_log(self) -> None:
        log = self.query_one(self.LOSS_PANEL).toggle_log()
        self._notice("notice", f"loss axis: {'log' if log else 'linear'} scale")

    # ------------------------------------------------------------- help and the palette
    def action_help(self) -> None:
        if self.HELP_SCREEN is not None and not isinstance(self.screen, self.HELP_SCREEN):
            self.push_screen(self.HELP_SCREEN())

    def more_commands(self):
        """Palette commands of the app's own, after the keymap's (none here)."""
        return ()

    def action_command_palette(self) -> None:
        """Textual's palette, guarded against a second Enter in one burst (bsim.app.commands.OnceCommandPalette)."""
        from bsim.app.commands import OnceCommandPalette
        if self.use_command_palette and not OnceCommandPalette.is_open(self):
            self.push_screen(OnceCommandPalette(id="--command-palette"))

    def get_system_commands(self, screen: Screen):
        """The keymap's commands (bsim.app.commands), then Textual's own (Theme, Keys...) that they do not replace."""
        from bsim.app.commands import palette_commands
        ours = [*palette_commands(self, self.KEYMAP), *self.more_commands()] if self.KEYMAP else []
        yield from ours
        titles = {c.title for c in ours}
        yield from (c for c in super().get_system_commands(screen) if c.title not in titles)

    # ------------------------------------------------------------- the runner: frames in, controls out
    def _post_frame(self, frame) -> None:
        """Called on the runner's thread (post_message is thread-safe)."""
        self.post_message(FrameReady(frame))

    def _post_event(self, kind: str, text: str) -> None:
        self.post_message(RunnerEvent(kind, text))

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

    # ------------------------------------------------------------- questions
    def on_key(self, event) -> None:
        """Keys of one burst that reached the main screen before the question opened go to the question."""
        if isinstance(self.screen, AskScreen):
            self.screen.take_key(event)

    def ask(self, prompt: str, callback, value: str = "") -> None:
        """Open one question (a second one while it is open is ignored); ``callback`` gets the answer."""
        if isinstance(self.screen, AskScreen):
            return
        self.push_screen(AskScreen(prompt, value=value), callback)

    # ------------------------------------------------------------- the end
    async def action_quit(self) -> None:
        self._stop_runner()
        self.exit(0)

    def _stop_runner(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            runner.stop()

    def quit_on_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP or SIGINT: quit as q does (a recording written, the terminal restored); exit 128 + signum."""
        self._stop_runner()
        self.exit(128 + signum)

    def on_unmount(self) -> None:
        forget_signals(getattr(self, "_signals", ()))
        self._stop_runner()
        if getattr(self, "_switch_interval", None):
            sys.setswitchinterval(self._switch_interval)


def run_themed(app, theme: str | None) -> int:
    """Run a bsim app in ``theme`` (None: its own); the exit code.

    An unknown theme is a one-line ``BsimInputError``, raised before the terminal is taken over.
    """
    if theme is not None:
        if theme not in app.available_themes:
            from bsim.errors import BsimInputError
            raise BsimInputError(f"--theme {theme[:24]!r}: expected one of {', '.join(sorted(app.available_themes))}")
        app.theme = theme
    result = app.run()
    return int(app.return_code or 0) if result is None else int(result)
