"""The race screen through its keys (Textual's Pilot): lanes added and removed, pause, a round, bad input.

The race is paused and stepped by the test (no thread) unless a test is about the thread itself.
"""

from __future__ import annotations

import time

import pytest

from bsim.app.race.help import RaceHelpScreen
from bsim.app.screens import AskScreen
from bsim.race.frame import MAX_LANES
from support.race import drive_race, race_of


def rows_of(table: str) -> list[str]:
    """The batch sizes in the table's rows, in order."""
    return [line.split()[1][2:] for line in table.splitlines() if line.startswith(("●", "★ B="))]


def legend_of(loss: str) -> list[str]:
    return [word[2:] for word in loss.splitlines()[0].split() if word.startswith("B=")]


def test_a_adds_a_lane_that_shows_in_the_table_the_legend_and_the_balls(tmp_path):
    async def script(d):
        await d.steps(100)
        before = (rows_of(d.panel("race-table")), legend_of(d.panel("race-loss")))
        await d.press("a")
        assert isinstance(d.app.screen, AskScreen)
        await d.answer("32")
        await d.steps(200)
        return before, d.panel("race-table"), d.panel("race-loss"), d.panel("race-balls"), d.lanes
    _app, (before, table, loss, balls, lanes) = drive_race(tmp_path, script)
    assert before == (["8", "64", "512"], ["8", "64", "512"])
    assert rows_of(table) == ["8", "32", "64", "512"]      # listed by batch size: the new lane takes its place
    assert legend_of(loss) == ["8", "32", "64", "512"]
    assert "B=32" in balls
    assert lanes[32] > 0                    # the new lane races from θ_0, catching up


def test_x_removes_the_lane_asked_for(tmp_path):
    async def script(d):
        await d.steps(100)
        await d.press("x")
        assert isinstance(d.app.screen, AskScreen)
        await d.answer("64")
        await d.steps(50)
        return d.panel("race-table"), d.panel("race-loss"), d.panel("race-balls")
    _app, (table, loss, balls) = drive_race(tmp_path, script)
    assert rows_of(table) == ["8", "512"]
    assert legend_of(loss) == ["8", "512"]
    assert "B=64" not in balls and "B=8" in balls


@pytest.mark.slow
def test_bad_batch_sizes_are_notices_and_change_no_lane(tmp_path):
    async def script(d):
        await d.steps(50)
        for answer in ("abc", "8", "0", "2.5", "８"):       # a full-width 8: not an ASCII digit
            await d.press("a")
            await d.answer(answer)
        await d.press("x")
        await d.answer("99")
        return list(d.errors), rows_of(d.panel("race-table")), d.text
    app, (errors, rows, text) = drive_race(tmp_path, script)
    assert rows == ["8", "64", "512"]
    assert len(errors) == 6
    assert "'abc'" in errors[0] and "expected an integer" in errors[0]
    assert "batch size 8: already a lane" in errors[1]
    assert "expected an integer >= 1" in errors[2] and "'2.5'" in errors[3]
    assert "'８'" in errors[4] and "expected an integer >= 1" in errors[4]
    assert "no such lane" in errors[5] and "8, 64, 512" in errors[5]
    assert errors[-1][:40] in text              # the last one is on the screen


def test_a_ninth_lane_is_refused_on_screen(tmp_path):
    sizes = [2 ** i for i in range(MAX_LANES)]           # 1 .. 128: the race is full

    async def script(d):
        await d.steps(20)
        await d.press("a")
        opened = isinstance(d.app.screen, AskScreen)
        return opened, list(d.errors), rows_of(d.panel("race-table"))
    _app, (opened, errors, rows) = drive_race(tmp_path, script, race=race_of(sizes=sizes), size=(120, 40))
    assert not opened
    assert errors and f"{MAX_LANES} lanes already" in errors[-1]
    assert rows == [str(b) for b in sizes]


def test_a_repeat_the_runner_refuses_is_a_notice_too(tmp_path):
    """The screen's own check aside, the runner's one line shows: B above N is clamped to N = 512, a lane already."""
    async def script(d):
        await d.press("a")
        await d.answer("100000")
        return list(d.errors), rows_of(d.panel("race-table"))
    _app, (errors, rows) = drive_race(tmp_path, script)
    assert rows == ["8", "64", "512"]
    assert errors and "already a lane" in errors[-1] and "clamped" in errors[-1]


def test_n_takes_one_round_every_lane_steps(tmp_path):
    async def script(d):
        await d.steps(100)
        before = dict(d.lanes)
        await d.press("n")
        after = dict(d.lanes)
        await d.press("full_stop")
        return before, after, dict(d.lanes), d.panel("race-table")
    _app, (before, after, again, table) = drive_race(tmp_path, script)
    assert all(after[b] > before[b] for b in before), (before, after)
    assert all(again[b] > after[b] for b in after)
    for b, step in again.items():                # the table shows the steps each lane has taken
        assert any(line.split()[1:3] == [f"B={b}", f"{step:,}"] for line in table.splitlines()), table


@pytest.mark.slow
def test_space_pauses_every_lane(tmp_path):
    """With the runner's thread: space stops every lane, the footer says paused; space again goes on."""
    async def script(d):
        for _ in range(200):                     # running: wait for steps
            await d.pilot.pause(0.02)
            if d.app.runner.latest is not None and min(d.lanes.values()) > 0:
                break
        await d.press("space")
        for _ in range(100):
            await d.pilot.pause(0.02)
            rs = d.app.history.latest.runner
            if rs is not None and rs.paused:
                break
        held = dict(d.lanes)
        time.sleep(0.3)
        await d.pilot.pause(0.1)
        still = dict(d.lanes)
        footer = d.text.splitlines()[-1]
        await d.press("space")
        for _ in range(200):
            await d.pilot.pause(0.02)
            if sum(d.lanes.values()) > sum(still.values()):
                break
        return held, still, footer, dict(d.lanes)
    _app, (held, still, footer, later) = drive_race(tmp_path, script, paused=False, threaded=True)
    assert held == still
    assert "paused" in footer
    assert sum(later.values()) > sum(still.values())


def test_help_and_screenshot(tmp_path):
    async def script(d):
        await d.steps(50)
        await d.press("question_mark")
        helped = isinstance(d.app.screen, RaceHelpScreen) and "one round" in d.text
        await d.press("escape")
        await d.press("ctrl+s")
        return helped, d.app.notices[-1]
    _app, (helped, notice) = drive_race(tmp_path, script)
    assert helped
    shots = list((tmp_path / "screenshots").glob("*.svg"))
    assert len(shots) == 1 and shots[0].read_text().startswith("<svg")
    assert notice[0] == "notice" and "screenshot saved" in notice[1]


def test_the_footer_names_the_axis_and_the_speed(tmp_path):
    async def script(d):
        await d.steps(50)
        first = d.text.splitlines()[-1]
        await d.press("less_than_sign")
        return first, d.text.splitlines()[-1]
    _app, (first, slower) = drive_race(tmp_path, script, race=race_of(by="steps"))
    assert "by steps" in first and "max" in first and "paused" in first
    assert "10,000/s" in slower or "≤10,000" in slower


def test_a_diverged_lane_is_marked_and_the_others_go_on(tmp_path):
    """lr 1 at B0 = 8 and linear lr scaling give B = 64 an lr of 8: that lane diverges, B = 8 races on."""
    async def script(d):
        await d.steps(500)
        before = d.lanes[8]
        await d.steps(100)
        return list(d.errors), d.panel("race-table"), before, d.lanes[8]
    race = race_of(sizes=(8, 64), lr_rule="linear", by="steps", lr=1.0)
    _app, (errors, table, before, after) = drive_race(tmp_path, script, race=race)
    assert any("lane B=64: diverged" in e for e in errors)
    row = next(line for line in table.splitlines() if "B=64" in line)
    assert "diverged" in row
    assert after > before


def test_the_projector_theme_and_a_terminal_too_small(tmp_path):
    async def script(d):
        await d.steps(50)
        await d.press("t")
        return d.app.theme, d.app.notices[-1][1]
    _app, (theme, notice) = drive_race(tmp_path, script)
    assert theme == "bsim-projector" and "projector" in notice

    async def small(d):
        return d.text
    _app, text = drive_race(tmp_path, small, size=(60, 16))
    assert "the race needs at least 70x20" in text
