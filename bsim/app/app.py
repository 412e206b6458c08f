"""The Textual app: panels that sample the runner's latest frame, and keys that send it actions.

The simulation lives in the runner's thread (bsim.runner); this module only
sends actions and draws frames. Every change shows the notice the simulation
returns; a bad value or a key at a bad moment is a notice, never a crash.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from rich.text import Text

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from bsim import actions, controls
from bsim.runner import Runner
from bsim.app import themes
from bsim.app.commands import PRESETS
from bsim.app.keys import SettingKeys
from bsim.app.history import FrameBuffer
from bsim.app.lifecycle import CLOSING_KEYS, SPEED_KEYS, FrameReady, RunnerEvent, RunnerLifecycle
from bsim.app.screens import HelpScreen
from bsim.app.signals import quit_on_signals
from bsim.app.widgets.ball import BallPanel
from bsim.app.widgets.data import DataPanel
from bsim.app.widgets.counters import CountersPanel
from bsim.app.widgets.gradient import GradientPanel
from bsim.app.widgets.panel import Panel, palette_remap
from bsim.app.widgets.loss import LossPanel
from bsim.app.widgets.variance import VariancePanel

#: below this the app shows a "too small" message instead of the panels
MIN_SIZE = (70, 20)
#: below this width the counters are narrow (short labels) and the header drops the device
NARROW_BELOW = 110
#: steps/s a replay starts at: a 3,000-step lecture stop takes 30 s, time to say what the screen shows,
#: and the loss curve and the ball move visibly between two frames (> or < changes it; --pace sets it)
REPLAY_PACE = 100
_BATCH = Binding.Group("B")
_LR = Binding.Group("lr")


class BsimApp(SettingKeys, RunnerLifecycle, App):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))   # absolute: subclasses elsewhere find it too
    TITLE = "bsim"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("space", "toggle_pause", "pause"),
        Binding("n", "step", "step", show=False),      # in the help and the pause notice: room for ? and q
        Binding("left_square_bracket", "halve_batch", "B/2", key_display="[", group=_BATCH),
        Binding("right_square_bracket", "double_batch", "B×2", key_display="]", group=_BATCH),
        *[Binding(k, f"preset('{k}')", f"B={b}", show=False) for k, b in PRESETS.items()],
        Binding("b", "ask_batch_size", "type B", show=False),
        Binding("minus", "halve_lr", "lr/2", key_display="-", group=_LR),
        Binding("plus,equals_sign", "double_lr", "lr×2", key_display="+", group=_LR),
        Binding("l", "cycle_lr_scaling", "scaling", show=False),
        Binding("s", "cycle_sampling", "sampling", show=False),
        Binding("m", "cycle_momentum", "momentum", show=False),
        Binding("M,shift+m", "ask_momentum", "type momentum", show=False),
        *SPEED_KEYS,
        Binding("f", "faster", "faster", show=False),             # the old keys, kept for fingers used to them
        Binding("F,shift+f", "slower", "slower", show=False),
        Binding("t", "toggle_projector", "projector theme", show=False),
        Binding("r", "reset", "reset"),
        Binding("R,shift+r", "toggle_recording", "record", show=False),
        Binding("c", "ask_caption", "caption", show=False),
        Binding("j", "jump", "next caption", show=False),
        Binding("p", "switch_problem", "problem"),
        Binding("y", "toggle_log", "log y", show=False),
        Binding("v", "probe", "probe", show=False),
        Binding("z", "refit_ball", "fit ball", show=False),
        Binding("e", "cycle_chains", "chains", show=False),
        Binding("w", "toggle_window", "window", show=False),
        Binding("x", "toggle_epochs", "steps/epochs", show=False),
        Binding("d", "toggle_data", "data", show=False),
        *CLOSING_KEYS,
    ]

    def __init__(self, sim, *, scenario=None, record: str | None = None, replay: bool = False,
                 threaded: bool = True, paused: bool = False, timing: bool = True, speed: int | None = None,
                 screenshots_dir: str | Path = "screenshots", recordings_dir: str | Path = "recordings",
                 fps: float = 20.0, theme: str | None = None, served: bool = False):
        super().__init__()
        self.register_theme(themes.PROJECTOR)
        self.served = served                # under `bsim serve`: a browser user, who opens only served files
        self.served_root = Path.cwd()
        self.chart_remap = None             # bsim's chart colours -> the theme's (set when the theme changes)
        self._theme_before_projector = themes.DEFAULT_THEME
        if theme is not None:
            self.theme = theme              # InvalidThemeError for an unknown name (run_app checks first)
        self.sim = sim                      # owned by the runner once it starts; the app never touches it
        self.scenario = (scenario or sim.scenario).copy()
        self.record_path = record
        self.replay = replay
        self.threaded, self.start_paused, self.timing = threaded, paused, timing
        self.speed = speed
        self.fps = fps
        self.screenshots_dir = Path(screenshots_dir)
        self.recordings_dir = Path(recordings_dir)
        self.history = FrameBuffer()
        self.runner: Runner | None = None
        self.notices: list[tuple[str, str]] = []   # (kind, text): every notice shown, oldest first
        self._urgent = False          # a key was pressed: draw the next frame before the runner goes on

    # ------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≈")
        yield Static("", id="caption")
        with Horizontal(id="main"):
            yield CountersPanel(self.history, frozen_rates=not self.timing, id="counters")
            with Grid(id="charts"):
                yield LossPanel(self.history, id="loss")
                yield GradientPanel(self.history, id="gradient")
                yield DataPanel(self.history, id="data")
                yield VariancePanel(self.history, id="variance")
                yield BallPanel(self.history, id="ball")
        yield Static("", id="notice")
        yield Static("", id="too-small")
        yield Footer(compact=True)

    @property
    def panels(self):
        if getattr(self, "_panels", None) is None:      # found once: a query per panel per frame is not free
            self._panels = [self.query_one(f"#{i}") for i in ("counters", "loss", "gradient", "data", "variance", "ball")]
        return self._panels

    def on_mount(self) -> None:
        if self.threaded:
            self.share_the_gil()
        self._set_titles(self.sim)
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._on_theme_changed(self.current_theme)
        self.query_one("#data").display = False      # d swaps it with the gradient panel
        self._check_size()
        if self.served:
            from bsim.app.serve import watch_server
            watch_server(self)
        self._start_runner(self.sim, replay=self.replay, record=self.record_path)
        self._signals = () if self.served else quit_on_signals(self)   # served: watch_server ends it (exit 0)
        for w in self.sim.scenario.warnings:
            self._notice("error", f"warning: {w}")

    def _start_runner(self, sim, replay: bool = False, record: str | None = None) -> None:
        """A runner on ``sim``; ``record``: start recording there before its thread takes the first step."""
        rec = self.scenario.recording or {}
        end = rec.get("final_tick") if replay else None
        self.runner = Runner(
            sim, self.scenario, on_frame=self._post_frame, on_event=self._post_event, fps=self.fps,
            paused=self.start_paused, timing=self.timing, replay=replay, threaded=self.threaded,
            speed=self.speed if self.speed is not None else (REPLAY_PACE if replay else None),
            recordings_dir=self.recordings_dir, replay_end=end if isinstance(end, int) and end > 0 else None,
        )
        began = rec.get("began_at", 0) if replay else 0
        if isinstance(began, int) and began > 0:
            self.runner.fast_forward(began)
            self._notice("notice", f"fast-forwarded to step {began}, where the recording began")
        if record:
            self.runner.submit(controls.ToggleRecording(record))   # no thread yet: handled now, at this tick
        self.runner.start()

    def _set_titles(self, sim) -> None:
        p = sim.problem
        self._show_titles(sim.scenario.title, p.kind, p.n_params, p.n_train, str(sim.device))

    def _show_titles(self, title: str, kind: str, n_params: int, n_train: int, device: str) -> None:
        self._titles = (title, kind, n_params, n_train, device)
        width = self.size.width
        if width >= NARROW_BELOW:
            self.title, self.sub_title = f"bsim · {title}", f"{kind} · d={n_params} · N={n_train} · {device}"
            return
        # narrow: the device and, if need be, N (both in the counters) leave room for the title
        self.title = title
        self.sub_title = f"{kind} · d={n_params} · N={n_train}"
        if len(title) + 3 + len(self.sub_title) > width - 18:    # the icon and the margins take ~18 cells
            self.sub_title = f"{kind} · d={n_params}"

    def on_resize(self, event) -> None:
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        w, h = size or self.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        self.screen.set_class(small, "-too-small")
        self.screen.set_class(w < NARROW_BELOW, "-narrow")
        if getattr(self, "_titles", None):
            self._show_titles(*self._titles)
        if small:
            self.query_one("#too-small", Static).update(
                f"The terminal is {w}x{h}: bsim needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}.\n"
                "Make the window larger (it is usable at 80x24, best at 120x36). q quits.")

    # ------------------------------------------------------------- runner -> screen
    def on_frame_ready(self, message: FrameReady) -> None:
        f, last = message.frame, self.history.latest
        if last is not None and (f.problem, f.n_train) != (last.problem, last.n_train):
            self._show_titles(f.title, f.problem, f.n_params, f.n_train, f.device)
        if last is not None and last.runner is not None and last.runner.recording and not (
                f.runner is not None and f.runner.recording):
            self._caption("")        # the recording stopped: its caption is no longer what is on screen
        self.history.add(f)
        if self.runner is not None and message.frame is not self.runner.latest:
            return   # a newer frame is on its way: draw that one
        busy = self.runner.ui_busy if self.threaded and self.runner is not None else None
        if busy is not None:
            busy.set()      # the runner waits between steps while the panels are built: no tug-of-war for the GIL
        for p in self.panels:
            p.show(self.history)
        if busy is not None:    # the first frame after a key: the runner leaves the GIL to the screen until it is drawn
            self.call_after_refresh(busy.clear) if self._urgent else busy.clear()
            self._urgent = False

    def on_runner_event(self, message: RunnerEvent) -> None:
        if message.kind == "caption":
            self._caption(message.text)
        else:
            self._notice(message.kind, message.text)

    def _notice(self, kind: str, text: str) -> None:
        self.notices.append((kind, text))
        self.history.notices.append((kind, text))
        self.history.version += 1
        self.query_one(CountersPanel).show(self.history)
        bar = self.query_one("#notice", Static)
        bar.set_class(kind == "error", "-error")
        bar.update(Text(text))              # as written: "[" and "]" are not markup

    def _caption(self, text: str) -> None:
        cap = self.query_one("#caption", Static)
        cap.update(Text(f"❝ {text} ❞") if text else Text(""))
        cap.set_class(bool(text), "-shown")

    def _on_theme_changed(self, theme) -> None:
        """The charts take the theme's colours (bsim.app.themes); each panel redraws."""
        palette = themes.chart_palette(theme.name, self.get_css_variables())
        self.chart_remap = palette_remap(palette)
        for panel in self.query(Panel):
            panel.restyle()

    # ------------------------------------------------------------- sending (send: RunnerLifecycle)
    def _state(self):
        f = self.history.latest
        return f.runner if f is not None else None

    def _current(self) -> tuple[int, float]:
        """The batch size and lr in force as last shown: what the b and lr questions start from.

        (The keys that change a setting relative to the one in force send relative actions instead.)
        """
        f = self.history.latest
        if f is None:
            opt = self.scenario.optimizer
            return opt.batch_size, opt.lr
        return f.next_batch_size, f.next_lr

    # ------------------------------------------------------------- the panels' own keys (z e w x d)

    def action_refit_ball(self) -> None:
        self.query_one(BallPanel).refit()

    def action_cycle_chains(self) -> None:
        """The next ensemble size of CHAIN_COUNTS, rebuilt at the current step (the runner applies it)."""
        self.send(actions.CycleChains())

    def action_toggle_data(self) -> None:
        """Swap the data panel and the gradient panel; the runner sends the data only while it is shown."""
        data, gradient = self.query_one("#data"), self.query_one("#gradient")
        data.display, gradient.display = not data.display, data.display
        self.send(controls.DataRequest(on=bool(data.display)))

    def action_toggle_window(self) -> None:
        self._notice("notice", self.query_one(LossPanel).toggle_window())

    def action_toggle_epochs(self) -> None:
        self._notice("notice", self.query_one(LossPanel).toggle_epochs())

    def action_toggle_log(self) -> None:
        log = self.query_one(LossPanel).toggle_log()
        self._notice("notice", f"loss axis: {'log' if log else 'linear'} scale")

    def save_svg(self, path: str | Path) -> Path:
        """Write the screen as SVG, atomically (the folder is made if needed); OSError if it cannot."""
        from bsim.atomic import atomic_write_text
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.export_screenshot())
        return path

    def action_toggle_projector(self) -> None:
        """t : the high-contrast light theme for projectors, and back to the theme before it."""
        if self.theme == themes.PROJECTOR_THEME:
            self.theme = self._theme_before_projector
        else:
            self._theme_before_projector = self.theme
            self.theme = themes.PROJECTOR_THEME
        self._notice("notice", f"theme: {self.theme} (t toggles the projector theme; ctrl+p Theme lists all)")

    def action_screenshot_svg(self) -> None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")[:-3]
        if self.is_web:     # under `bsim serve`: the file goes to the browser, not the server's disk
            import io
            self.deliver_text(io.StringIO(self.export_screenshot()), save_filename=f"bsim-{stamp}.svg",
                              mime_type="image/svg+xml")
            self._notice("notice", f"screenshot sent to the browser: bsim-{stamp}.svg")
            return
        path = self.screenshots_dir / f"bsim-{stamp}.svg"
        try:
            self.save_svg(path)
        except OSError as exc:
            self._notice("error", f"cannot write the screenshot {path}: {exc.strerror or exc}")
            return
        self._notice("notice", f"screenshot saved: {path}")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_open_scenario(self) -> None:
        self.ask("Scenario: a bundled name (default, logreg, lstm, ...) or a TOML path:", self.open_scenario_text)

    def open_scenario_text(self, text: str | None) -> None:
        if text is None or not text.strip():
            return
        from bsim.errors import BsimInputError
        from bsim.scenario import find_scenario
        from bsim.simulation import Simulation
        if self.served:
            from bsim.app.serve import check_served_path
            if (why := check_served_path(text, self.served_root)) is not None:
                self._notice("error", f"cannot open that scenario: {why}")
                return
        try:
            sc = find_scenario(text.strip())
            if self.served:
                from bsim.app.serve import check_served_scenario
                if (why := check_served_scenario(sc, self.served_root)) is not None:
                    self._notice("error", f"cannot open that scenario: {why}")
                    return
            sim = Simulation(sc)
        except BsimInputError as exc:
            self._notice("error", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad file must not take the app down
            self._notice("error", f"{text.strip()}: cannot open: {type(exc).__name__}: {exc}")
            return
        old = self.runner
        self.runner = None
        if old is not None:
            old.stop()
        self.sim, self.scenario = sim, sc.copy()
        self.history.clear()
        self.history.latest = None
        self._caption("")
        self._set_titles(sim)
        self._start_runner(sim)
        self._notice("notice", f"opened {text.strip()}: {sc.title}")

    # ------------------------------------------------------------- palette
    def action_command_palette(self) -> None:
        """Textual's palette, guarded against a second Enter in one burst (bsim.app.commands.OnceCommandPalette)."""
        from bsim.app.commands import OnceCommandPalette
        if self.use_command_palette and not OnceCommandPalette.is_open(self):
            self.push_screen(OnceCommandPalette(id="--command-palette"))

    def get_system_commands(self, screen: Screen):
        """bsim's commands, then Textual's own (Theme, Keys, Screenshot...) that bsim does not replace."""
        from bsim.app.commands import palette_commands
        ours = list(palette_commands(self))
        yield from ours
        titles = {c.title for c in ours}
        yield from (c for c in super().get_system_commands(screen) if c.title not in titles)
