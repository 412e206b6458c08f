"""The Textual app: panels that sample the runner's latest frame, and keys that send it actions.

The simulation lives in the runner's thread (bsim.runner); this module only
sends actions and draws frames. Every change shows the notice the simulation
returns; a bad value or a key at a bad moment is a notice, never a crash.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Header, Static

from bsim import actions, controls
from bsim.runner import Runner
from bsim.scenario import PROBLEM_SCENARIOS
from bsim.app import keymap
from bsim.app.base import NARROW_BELOW, REPLAY_PACE, AppBase, FrameReady, RunnerEvent
from bsim.app.keys import SettingKeys
from bsim.app.history import FrameBuffer
from bsim.app.screens import HelpScreen
from bsim.app.widgets.ball import BallPanel
from bsim.app.widgets.data import DataPanel
from bsim.app.widgets.counters import CountersPanel
from bsim.app.widgets.footer import KeysFooter
from bsim.app.widgets.gradient import GradientPanel
from bsim.app.widgets.landscape import LandscapePanel
from bsim.app.widgets.landscape_data import picture
from bsim.app.widgets.loss import LossPanel
from bsim.app.widgets.variance import VariancePanel

class BsimApp(SettingKeys, AppBase):
    """bsim run's screen. Owns: the FrameBuffer its panels read, the caption banner, the titles.

    How a key reaches the simulation and back, ] for instance: the binding comes from its row of
    bsim.app.keymap (``right_square_bracket`` -> ``double_batch``); Textual calls ``action_double_batch``
    (bsim.app.keys.SettingKeys), which sends ``bsim.actions.ScaleBatchSize(2)`` through ``send`` (AppBase) to
    the runner's queue; the runner's thread applies it to its simulation at the next step (bsim.runner),
    publishes a frame, and posts it back here (FrameReady): ``on_frame_ready`` hands it to every panel.
    The view's own keys (y, w, x, z, d) change a panel and send nothing, or a control (bsim.controls).
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))   # absolute: subclasses elsewhere find it too
    TITLE = "bsim"
    BINDINGS = keymap.bindings(keymap.MAIN)
    KEYMAP = keymap.MAIN
    HELP_SCREEN = HelpScreen
    LOSS_PANEL = LossPanel

    def __init__(self, sim, *, scenario=None, record: str | None = None, replay: bool = False,
                 threaded: bool = True, paused: bool = False, timing: bool = True, speed: int | None = None,
                 screenshots_dir: str | Path = "screenshots", recordings_dir: str | Path = "recordings",
                 fps: float = 20.0, theme: str | None = None, served: bool = False):
        super().__init__(screenshots_dir=screenshots_dir)
        self.served = served                # under `bsim serve`: a browser user, who opens only served files
        self.served_root = Path.cwd()
        if theme is not None:
            self.theme = theme              # InvalidThemeError for an unknown name (run_app checks first)
        self.sim = sim                      # owned by the runner once it starts; the app never touches it
        self.scenario = (scenario or sim.scenario).copy()
        self.record_path = record
        self.replay = replay
        self.threaded, self.start_paused, self.timing = threaded, paused, timing
        self.speed = speed
        self.fps = fps
        self.recordings_dir = Path(recordings_dir)
        self.history = FrameBuffer()
        self.runner: Runner | None = None

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
                yield LandscapePanel(self.history, id="landscape")
        yield Static("", id="notice")
        yield Static("", id="too-small")
        yield KeysFooter(compact=True)

    @property
    def panels(self):
        if getattr(self, "_panels", None) is None:      # found once: a query per panel per frame is not free
            self._panels = [self.query_one(f"#{i}")
                            for i in ("counters", "loss", "gradient", "data", "variance", "ball", "landscape")]
        return self._panels

    def start(self) -> None:
        """Once mounted (AppBase.on_mount): the titles, the runner, the scenario's warnings."""
        self._set_titles(self.sim)
        self.query_one("#data").display = False      # d swaps it with the gradient panel
        self.query_one("#landscape").display = False     # in place of the ball for the landscape problems
        if self.served:
            from bsim.app.serve import watch_server
            watch_server(self)
        self._start_runner(self.sim, replay=self.replay, record=self.record_path)
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
            self.runner.begin_at(began)      # in the runner's thread, saying how far it got ("progress")
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

    def resized(self, width: int, height: int) -> None:
        if getattr(self, "_titles", None):
            self._show_titles(*self._titles)

    # ------------------------------------------------------------- runner -> screen
    def on_frame_ready(self, message: FrameReady) -> None:
        f, last = message.frame, self.history.latest
        if last is not None and (f.problem, f.n_train) != (last.problem, last.n_train):
            self._show_titles(f.title, f.problem, f.n_params, f.n_train, f.device)
        if last is not None and last.runner is not None and last.runner.recording and not (
                f.runner is not None and f.runner.recording):
            self._caption("")        # the recording stopped: its caption is no longer what is on screen
        self.history.add(f)
        self._show_landscape(f)
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

    def _show_landscape(self, f) -> None:
        """The landscape panel in the ball panel's place for a problem with a landscape, the ball otherwise."""
        land = picture(f) is not None
        ball, landscape = self.query_one("#ball"), self.query_one("#landscape")
        if landscape.display != land:
            landscape.display, ball.display = land, not land

    def on_runner_event(self, message: RunnerEvent) -> None:
        if message.kind == "caption":
            self._caption(message.text)
        elif message.kind == "progress":   # a replay fast-forwarding: the notice bar says how far, not kept
            self.query_one("#notice", Static).update(Text(message.text))
        else:
            self._notice(message.kind, message.text)

    def _notice(self, kind: str, text: str) -> None:
        """The notice bar (AppBase), and the counters' list of notices."""
        super()._notice(kind, text)
        self.history.notices.append((kind, text))
        self.history.version += 1
        self.query_one(CountersPanel).show(self.history)

    def _caption(self, text: str) -> None:
        cap = self.query_one("#caption", Static)
        cap.update(Text(f"❝ {text} ❞") if text else Text(""))
        cap.set_class(bool(text), "-shown")

    # ------------------------------------------------------------- what the keys start from (send: AppBase)
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

    # ------------------------------------------------------------- the panels' own keys (z L e x d; w y: AppBase)

    def action_refit_ball(self) -> None:
        self.query_one(BallPanel).refit()

    def action_cycle_ball_view(self) -> None:
        """L: the ε-ball panel's plane and law side by side, the law alone, the plane alone."""
        self._notice("notice", self.query_one(BallPanel).cycle_view())

    def action_cycle_chains(self) -> None:
        """The next ensemble size of CHAIN_COUNTS, rebuilt at the current step (the runner applies it)."""
        self.send(actions.CycleChains())

    def action_toggle_data(self) -> None:
        """Swap the data panel and the gradient panel; the runner sends the data only while it is shown."""
        data, gradient = self.query_one("#data"), self.query_one("#gradient")
        data.display, gradient.display = not data.display, data.display
        self.send(controls.DataRequest(on=bool(data.display)))

    def action_toggle_epochs(self) -> None:
        self._notice("notice", self.query_one(LossPanel).toggle_epochs())

    def action_open_scenario(self) -> None:
        names = ", ".join(PROBLEM_SCENARIOS.values())    # one per problem; `bsim scenarios` lists them all
        self.ask(f"Scenario: a bundled name ({names}, ...) or a TOML path:", self.open_scenario_text)

    def open_scenario_text(self, text: str | None) -> None:
        if text is None or not text.strip():
            return
        from bsim.errors import BsimInputError, quote
        from bsim.scenario import find_scenario
        from bsim.simulation import Simulation
        try:
            if self.served:      # inside the try: a name over 255 bytes raises OSError in the path's check
                from bsim.app.serve import check_served_path
                if (why := check_served_path(text, self.served_root)) is not None:
                    self._notice("error", f"cannot open that scenario: {why}")
                    return
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
        except OSError as exc:    # a name too long, say: the user's text cut to 12, no path of the server's
            self._notice("error", f"{quote(text.strip())}: cannot open: {exc.strerror or type(exc).__name__}")
            return
        except Exception as exc:  # noqa: BLE001 - a bad file must not take the app down
            self._notice("error", f"{quote(text.strip())}: cannot open: {type(exc).__name__}")
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

    def more_commands(self):
        """The palette's entry of the sweep screen (bsim.app.sweep_screen), after the keymap's."""
        from bsim.app.sweep_screen import palette_commands
        return palette_commands(self)
