"""Recording through the app: keys pressed at known steps (the simulation stepped from the test),
then the recording replayed headless gives the CSV of the frames the app was shown, byte for byte.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import tomllib
from pathlib import Path

import pytest

from bsim.app.app import BsimApp
from bsim.cli import main
from bsim.frame import CSV_COLUMNS
from bsim.scenario import find_scenario, load_scenario
from bsim.simulation import Simulation


def scenario():
    sc = find_scenario("default")
    sc.problem.n_train = 256
    sc.problem.n_test = 64
    return sc


class Session:
    """The app with a runner that takes no thread; rows are the frames published after each step."""

    def __init__(self, app: BsimApp, pilot):
        self.app, self.pilot = app, pilot
        buf = io.StringIO()
        self.buf, self.writer = buf, csv.writer(buf, lineterminator="\n")
        self.writer.writerow(CSV_COLUMNS)

    @property
    def tick(self) -> int:
        return self.app.sim.tick

    async def run_to(self, tick: int) -> None:
        runner = self.app.runner
        while self.tick < tick:
            if runner.advance(1):
                self.writer.writerow(runner.latest.csv_row())
            else:                      # held at a caption of a replay: space goes on
                assert not self.app.sim.diverged
                await self.press("space")
        await self.pilot.pause()

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.pilot.pause()

    async def caption(self, text: str) -> None:
        await self.press("c")
        await self.pilot.press(*text)
        await self.press("enter")

    @property
    def csv(self) -> str:
        return self.buf.getvalue()


def drive(sc, script, **app_kwargs):
    """Run ``script(session)`` in the app headless; returns the CSV of the frames and the app."""
    out = {}

    async def go():
        app = BsimApp(Simulation(sc), scenario=sc, threaded=False, timing=False, **app_kwargs)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            session = Session(app, pilot)
            await script(session)
            out["csv"] = session.csv
            await pilot.press("q")
        out["app"] = app
    asyncio.run(go())
    return out["csv"], out["app"]


def replay_csv(path: Path, out: Path) -> tuple[str, int]:
    code = main(["replay", str(path), "--headless", "--no-timing", "--metrics", str(out)])
    return out.read_text(), code


@pytest.mark.slow
def test_keys_pressed_in_the_app_replay_to_the_same_csv(tmp_path, capsys):
    rec = tmp_path / "talk.toml"

    async def script(s: Session):
        await s.run_to(10)
        await s.press("right_square_bracket")      # B 8 -> 16 at tick 10
        await s.run_to(25)
        await s.press("minus")                     # lr / 2
        await s.run_to(40)
        await s.press("s")                         # sampling shuffle -> iid
        await s.caption("iid now: the textbook model")
        await s.run_to(55)
        await s.press("l", "3")                    # lr scaling none -> linear, then B = 4 (lr follows)
        await s.run_to(70)
        await s.press("r")                         # reset
        await s.run_to(90)
        await s.press("p")                         # switch problem: logistic regression
        await s.run_to(120)

    live, app = drive(scenario(), script, record=str(rec))
    assert not [n for n in app.notices if n[0] == "error"], app.notices
    events = tomllib.loads(rec.read_text())["timeline"]
    assert [(e["at"], k) for e in events for k in e if k != "at"] == [
        (10, "batch_size"), (25, "lr"), (40, "sampling"), (40, "caption"), (55, "lr_scaling"),
        (55, "batch_size"), (70, "reset"), (90, "problem")]
    replayed, code = replay_csv(rec, tmp_path / "replay.csv")
    assert code == 0 and capsys.readouterr().err == ""   # the check agrees
    assert replayed == live
    assert len(live.splitlines()) == 121


def test_recording_begun_mid_run_in_the_app(tmp_path, capsys):

    async def script(s: Session):
        s.app.runner.recordings_dir = tmp_path
        await s.run_to(15)
        await s.press("right_square_bracket")      # before recording: still part of the replay
        await s.run_to(30)
        await s.press("R")                         # recording starts at tick 30
        await s.run_to(45)
        await s.press("left_square_bracket")
        await s.run_to(60)
        await s.press("R")                         # stops: the check is written

    live, app = drive(scenario(), script)
    [path] = list(tmp_path.glob("*.toml"))
    table = tomllib.loads(path.read_text())["recording"]
    assert table["began_at"] == 30 and table["final_tick"] == 60
    replayed, code = replay_csv(path, tmp_path / "replay.csv")
    assert code == 0 and capsys.readouterr().err == ""
    assert replayed == live


@pytest.mark.slow
def test_captions_in_a_replay_and_taking_over(tmp_path, capsys):
    """Replay a recording with captions in the app while recording it again; take over at tick 50."""
    first = tmp_path / "first.toml"

    async def record(s: Session):
        await s.run_to(20)
        await s.caption("first caption")
        await s.press("right_square_bracket")
        await s.run_to(70)
        await s.caption("second caption")
        await s.press("right_square_bracket")
        await s.run_to(100)

    drive(scenario(), record, record=str(first))
    second = tmp_path / "second.toml"
    shown = []

    async def replay(s: Session):
        await s.run_to(20)
        s.app.runner.advance(1)                    # the replay stops at the caption, banner shown
        await s.pilot.pause()
        shown.append(str(s.app.query_one("#caption").render()))
        await s.run_to(50)
        await s.press("left_square_bracket")       # take over: the rest of the recording is dropped
        shown.append(str(s.app.query_one("#caption").render()))
        await s.run_to(100)

    sc = load_scenario(first)
    live, app = drive(sc, replay, record=str(second), replay=True)
    assert "first caption" in shown[0]
    assert shown[1].strip() == ""                  # the banner cleared: the old caption is not on the live run
    replayed, code = replay_csv(second, tmp_path / "replay.csv")
    assert code == 0 and capsys.readouterr().err == ""
    assert replayed == live
    # what the second recording holds: the first caption and change, then the take-over; not the rest
    captions = [ev.caption for ev in load_scenario(second).timeline if ev.caption]
    assert captions == ["first caption"]


def test_a_replay_begun_late_says_it_fast_forwards_within_two_seconds(tmp_path):
    """A recording begun at step 80,000 (about 80 s of steps to redo): the notice bar says "fast-forwarding
    to step 80,000" with a bar within 2 s of the app's mount, not a blank screen; q quits in the middle."""
    rec = tmp_path / "late.toml"
    assert main(["run", "--headless", "--steps", "10", "--no-timing", "--metrics", str(tmp_path / "m.csv"),
                 "--record", str(rec)]) == 0
    rec.write_text(rec.read_text().replace("began_at = 0", "began_at = 80000")
                   .replace("final_tick = 10", "final_tick = 80010"))
    sc = load_scenario(rec)
    app = BsimApp(Simulation(sc), scenario=sc, replay=True, timing=False, recordings_dir=tmp_path,
                  screenshots_dir=tmp_path)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            start = time.perf_counter()          # the screen is mounted: the runner's thread starts
            def bar() -> str:
                return str(app.query_one("#notice").render())
            while "fast-forwarding to step 80,000" not in bar() and time.perf_counter() - start < 2:
                await pilot.pause(0.05)
            shown, seen = time.perf_counter() - start, bar()
            quit_at = time.perf_counter()
            await pilot.press("q")
        return shown, seen, time.perf_counter() - quit_at, app.sim.tick

    shown, seen, quitting, tick = asyncio.run(go())
    assert shown < 2 and "fast-forwarding to step 80,000" in seen and "╸" in seen, (shown, seen)
    assert quitting < 2 and tick < 80000          # q ended the fast-forward where it was
