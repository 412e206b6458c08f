"""The race screen: every lane's loss overlaid, their epsilon-balls on one scale, and a table of lanes.

A Textual app of its own (``RaceApp``) that sends controls to a RaceRunner (bsim.race.runner) and
draws the RaceFrames it publishes; it never touches a lane's simulation. What it shares with the main
app (themes, notices, questions, screenshots, the palette, signals, the runner's end) is bsim.app.base's;
its keys are the RACE rows of bsim.app.keymap. Bad input (a batch size already racing, a ninth lane, a word where a number goes) is a notice.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Static

from bsim import controls
from bsim.app import keymap
from bsim.app.answers import BadAnswer, batch_size
from bsim.app.base import NARROW_BELOW, REPLAY_PACE, AppBase, FrameReady, RunnerEvent
from bsim.app.race.balls import RaceBallsPanel
from bsim.app.race.help import RaceHelpScreen
from bsim.app.race.history import AXIS_UNITS, RaceHistory
from bsim.app.race.loss import RaceLossPanel
from bsim.app.race.table import RaceTable
from bsim.app.widgets.counters import speed_text
from bsim.race.frame import MAX_LANES

#: below this height the header goes (the charts need the row)
SHORT_BELOW = 30


class RaceApp(AppBase):
    """The race screen. Owns: the RaceHistory its panels read, the status line, the questions (a, x).

    Sends controls to the RaceRunner (Pause, Resume, TogglePause, Step, Faster, Slower, ToggleRecording,
    AddLane, RemoveLane); never touches the race itself once the runner has it.
    """

    CSS_PATH = [str(Path(__file__).parent.parent / "app.tcss"), str(Path(__file__).with_name("race.tcss"))]
    TITLE = "bsim race"
    BINDINGS = keymap.bindings(keymap.RACE)
    KEYMAP = keymap.RACE
    NEEDS = "the race"
    HELP_SCREEN = RaceHelpScreen
    LOSS_PANEL = RaceLossPanel

    def __init__(self, race, *, paused: bool = False, speed: int | None = None, record: str | None = None,
                 replay: bool = False, threaded: bool = True, timing: bool = True, fps: float = 20.0,
                 screenshots_dir: str | Path = "screenshots", recordings_dir: str | Path = "recordings"):
        super().__init__(screenshots_dir=screenshots_dir)
        self.race = race                 # owned by the runner once it starts; the app never touches it
        self.start_paused, self.record_path, self.replay = paused, record, replay
        self.speed = REPLAY_PACE if replay and speed is None else speed
        self.threaded, self.timing, self.fps = threaded, timing, fps
        self.recordings_dir = Path(recordings_dir)
        self.history = RaceHistory()
        self.runner = None
        self._status = ""

    # ------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≈")
        with Vertical(id="race-main"):
            yield RaceLossPanel(self.history, id="race-loss")
            yield RaceBallsPanel(self.history, id="race-balls")
            yield RaceTable(self.history, frozen_rates=not self.timing, id="race-table")
        yield Static("", id="notice")
        yield Static("", id="too-small")
        with Horizontal(id="race-footer"):
            yield Footer(compact=True, show_command_palette=False)
            yield Static("", id="race-status")

    @property
    def panels(self):
        return [self.query_one(f"#{i}") for i in ("race-loss", "race-balls", "race-table")]

    def start(self) -> None:
        """Once mounted (AppBase.on_mount): the runner, recording from the start if asked."""
        from bsim.race.runner import RaceRunner
        self.runner = RaceRunner(self.race, on_frame=self._post_frame, on_event=self._post_event, fps=self.fps,
                                 paused=self.start_paused, speed=self.speed, threaded=self.threaded,
                                 timing=self.timing, recordings_dir=self.recordings_dir)
        if self.record_path:
            self.runner.submit(controls.ToggleRecording(self.record_path))   # no thread yet: handled now
        self.runner.start()

    def resized(self, width: int, height: int) -> None:
        self.screen.set_class(height < SHORT_BELOW, "-short")
        if self.history.latest is not None:
            self._show_status(self.history.latest)

    # ------------------------------------------------------------- runner -> screen
    def on_frame_ready(self, message: FrameReady) -> None:
        try:
            table = self.query_one(RaceTable)
        except NoMatches:
            return       # closing: a frame still in the queue has no screen to go to
        first = self.history.latest is None
        self.history.add(message.frame)
        if first:
            self._show_titles(message.frame)
        if self.runner is not None and message.frame is not self.runner.latest:
            return   # a newer frame is on its way: draw that one
        rows = RaceTable.rows_for(message.frame)      # the border, a header, a row per lane, the winner
        if table.styles.height is None or table.styles.height.value != rows:
            table.styles.height = rows
        for p in self.panels:
            p.show(self.history)
        self._show_status(message.frame)
        if self._urgent and self.threaded and self.runner is not None:
            self._urgent = False
            busy = self.runner.ui_busy
            busy.set()
            self.call_after_refresh(busy.clear)

    def _show_titles(self, race) -> None:
        if not race.lanes:
            return
        f = race.lanes[0].frame
        self.title = f"bsim race · {f.title}"
        self.sub_title = f"{f.problem} · d={f.n_params} · N={f.n_train}" + (" · replay" if self.replay else "")

    def _show_status(self, race) -> None:
        """The footer's right end: the axis the lanes keep step on, the speed, paused or recording.

        Updated only when it changes (a Static's update lays the screen out again).
        """
        rs = race.runner
        speed = speed_text(rs.speed if rs is not None else None, narrow=True).replace("  < >", "")
        state = " · paused" if rs is not None and rs.paused else ""
        rec = " · ● rec" if rs is not None and rs.recording else ""
        unit = AXIS_UNITS.get(race.by, race.by)
        text = f"lanes by {unit} · {speed}{state}{rec}"
        if self.size.width < NARROW_BELOW:
            text = f"by {unit} · {speed}{state}{rec}"
        if text != self._status:
            self._status = text
            self.query_one("#race-status", Static).update(Text(text))

    def on_runner_event(self, message: RunnerEvent) -> None:
        self._notice(message.kind, message.text)

    # ------------------------------------------------------------- sending (send, space, n, <, >, R: AppBase)
    def lane_sizes(self) -> list[int]:
        return list(self.history.lanes)

    def action_add_lane(self) -> None:
        """a: ask the new lane's batch size (refused at once when the race is full)."""
        if len(self.lane_sizes()) >= MAX_LANES:
            self._notice("error", f"the race has {MAX_LANES} lanes already (the most): x removes one")
            return
        self.ask(f"Batch size of the new lane (an integer from 1 to N; racing: {self._racing()}):",
                 self.add_lane_text)

    def _typed_size(self, text: str | None) -> int | None:
        """The batch size typed after a or x (bsim.app.answers.batch_size); None: cancelled, or a notice said why."""
        if text is None or not text.strip():
            return None
        try:
            return batch_size(text)
        except BadAnswer as exc:
            self._notice("error", str(exc))
            return None

    def add_lane_text(self, text: str | None) -> None:
        if (b := self._typed_size(text)) is None:
            return
        if b in self.lane_sizes():
            self._notice("error", f"batch size {b}: already a lane; expected a batch size not in the race")
        else:
            from bsim.race.controls import AddLane
            self.send(AddLane(b))

    def action_remove_lane(self) -> None:
        """x: ask which lane to remove (the last one offered)."""
        sizes = self.lane_sizes()
        if len(sizes) <= 1:
            self._notice("error", "a race keeps at least one lane: a adds one")
            return
        self.ask(f"Remove which lane? (its batch size: {self._racing()})", self.remove_lane_text, str(sizes[-1]))

    def remove_lane_text(self, text: str | None) -> None:
        if (b := self._typed_size(text)) is None:
            return
        if b not in self.lane_sizes():
            self._notice("error", f"batch size {b}: no such lane; expected one of {self._racing()}")
        else:
            from bsim.race.controls import RemoveLane
            self.send(RemoveLane(b))

    def _racing(self) -> str:
        return ", ".join(str(b) for b in self.lane_sizes()) or "none yet"

    # ------------------------------------------------------------- the panels' own keys (w y: AppBase)
    def action_refit_balls(self) -> None:
        self._notice("notice", self.query_one(RaceBallsPanel).refit())
