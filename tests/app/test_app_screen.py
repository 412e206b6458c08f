"""A screen a class can read (issue 11): captions as written, a teaching pace, momentum keys, every size, themes.

Driven through the app with Pilot (no thread unless said), as in test_app_keys.
"""

from __future__ import annotations

import asyncio
import types

import pytest
from rich.color import Color as RichColor
from support.app import Driver, drive, panel_text
from textual import events

from bsim import actions, controls
from bsim.app import app as app_module
from bsim.app import themes
from bsim.app.format import num
from bsim.app.screens import AskScreen
from bsim.app.widgets.canvas import COLORS
from bsim.cli import main
from bsim.scenario import find_scenario


# ------------------------------------------------------------------ captions
def test_a_caption_with_brackets_shows_as_written_and_clears_when_recording_stops(tmp_path):
    async def script(d: Driver):
        await d.steps(4)
        await d.press("R")
        await d.press("c")
        await d.type_answer("take over with [ and ]")
        assert "❝ take over with [ and ] ❞" in d.text            # the banner, brackets included
        assert d.notice == "caption at step 4: take over with [ and ]"
        assert "take over with [ and ]" in d.text.split("❞", 1)[1]  # the notice line too
        await d.press("R")
        await d.steps(1)
        assert "recording saved" in " ".join(t for _, t in d.app.notices[-2:])
        assert "❝" not in d.text and not d.app.query_one("#caption").has_class("-shown")
    drive(tmp_path, script)


def test_caption_notices_count_steps_as_the_counter_does_after_a_reset(tmp_path):
    async def script(d: Driver):
        await d.steps(7)
        await d.press("r")
        await d.steps(3)
        assert d.sim.tick == 10 and d.sim.step_count == 3     # the run's ticks go on; the counter restarts
        await d.press("R", "c")
        await d.type_answer("after the reset")
        assert "step        3" in panel_text(d.app, "counters")
        assert d.notice == "caption at step 3: after the reset"
    drive(tmp_path, script)


# ------------------------------------------------------------------ pace
def test_a_replay_starts_at_the_teaching_pace_and_the_angle_keys_change_it(tmp_path):
    async def script(d: Driver):
        r = d.app.runner
        assert r.speed == app_module.REPLAY_PACE == 100
        assert "≤100 steps/s  < >" in panel_text(d.app, "counters")
        await d.press("greater_than_sign")
        assert r.speed == 200 and d.notice == "speed 100 steps/s -> 200 steps/s"
        await d.press("less_than_sign", "less_than_sign")
        assert r.speed == 50 and "≤50 steps/s" in panel_text(d.app, "counters")
        await d.press("f")                                    # the old keys stay as aliases
        assert r.speed == 100
        await d.press("F")
        assert r.speed == 50
    drive(tmp_path, script, sc=find_scenario("ball-shrinks"), replay=True)


def test_a_pace_between_the_levels_moves_to_the_next_level(tmp_path):
    async def script(d: Driver):
        r = d.app.runner
        assert r.speed == 30 and "≤30 steps/s" in panel_text(d.app, "counters")
        await d.press("greater_than_sign")
        assert r.speed == 50
        r.speed = 30
        await d.press("less_than_sign")
        assert r.speed == 20
        for _ in range(6):
            await d.press("less_than_sign")
        assert r.speed == 1 and d.notice == "speed: already at 1 steps/s"
    drive(tmp_path, script, speed=30)


def test_next_speed_walks_the_levels_both_ways():
    assert controls.next_speed(None, faster=True) is None
    assert controls.next_speed(None, faster=False) == 10000
    assert controls.next_speed(10000, faster=True) is None
    assert controls.next_speed(1, faster=False) == 1
    assert controls.next_speed(7, faster=True) == 10 and controls.next_speed(7, faster=False) == 5


def test_pace_flag_reaches_the_app_and_a_bad_pace_is_one_line(capsys, monkeypatch):
    seen = {}

    def fake_run_app(sc, **kw):
        seen.update(kw)
        return 0
    monkeypatch.setattr("bsim.app.run_app", fake_run_app)
    assert main(["run", "--pace", "30"]) == 0 and seen["pace"] == 30
    assert main(["replay", "scenarios/ball-shrinks.toml", "--pace", "5", "--theme", "bsim-projector"]) == 0
    assert seen["pace"] == 5 and seen["theme"] == "bsim-projector"
    capsys.readouterr()
    assert main(["run", "--pace", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected an integer >= 1" in err


# ------------------------------------------------------------------ momentum
@pytest.mark.parametrize("now,after", [(0.0, 0.5), (0.5, 0.9), (0.9, 0.0), (0.7, 0.9), (0.95, 0.0)])
def test_cycle_momentum_resolves_against_the_momentum_in_force(now, after):
    settings = types.SimpleNamespace(momentum=now)
    assert actions.absolute(actions.CycleMomentum(), settings) == actions.SetMomentum(after)


@pytest.mark.slow
def test_m_cycles_momentum_and_shift_m_types_one(tmp_path):
    async def script(d: Driver):
        seen = []
        for _ in range(3):
            await d.press("m")
            seen.append(d.sim.momentum)
        assert seen == [0.5, 0.9, 0.0] and d.notice == "momentum 0.9 -> 0"
        await d.press("m")
        assert "momentum    0.5" in panel_text(d.app, "counters")
        await d.press("M")
        assert isinstance(d.app.screen, AskScreen)
        await d.type_answer("0.7")
        assert d.sim.momentum == 0.7 and "momentum    0.7" in panel_text(d.app, "counters")
        for bad in ("1", "-0.1", "heavy"):
            await d.press("M")
            await d.type_answer(bad)
            assert d.sim.momentum == 0.7 and "expected a number in [0, 1)" in d.errors[-1], bad
        await d.press("m")                                      # from a typed 0.7: on to 0.9
        assert d.sim.momentum == 0.9
    drive(tmp_path, script)


def test_two_quick_m_presses_reach_0_9(tmp_path):
    """m is resolved by the runner against the momentum it reaches, not a stale frame's."""
    async def script(d: Driver):
        for _ in range(2):
            d.app.post_message(events.Key("m", "m"))
        for _ in range(60):
            if d.app.history.latest is not None and d.app.history.latest.momentum == 0.9:
                break
            await asyncio.sleep(0.05)
            await d.pilot.pause()
        assert [n for k, n in d.app.notices if n.startswith("momentum")][-2:] == [
            "momentum 0 -> 0.5", "momentum 0.5 -> 0.9"]
    drive(tmp_path, script, threaded=True)


# ------------------------------------------------------------------ every size
@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
def test_nothing_is_cut_in_the_counters_footer_and_header(tmp_path, size):
    async def script(d: Driver):
        await d.press("m")
        await d.steps(20)
        text = d.text
        lines = text.splitlines()
        footer = lines[size[1] - 1]
        for key in ("space pause", "[ ] B", "- + lr", "< > speed", "r reset", "p problem", "? help", "q quit",
                    "^p palette"):
            assert key in footer, (key, footer)
        counters = panel_text(d.app, "counters")
        for row in ("sampling shuffle", "momentum 0.5", "scaling  none", "speed    max  < >", "B_simple ",
                    "B        8 of 256"):
            assert row in counters, (row, counters)
        assert "Least squares: the noise ball — linreg · d=2 · N=256" in lines[0]
        f, gradient = d.app.history.latest, panel_text(d.app, "gradient")
        assert f"|g_B| {num(f.grad_norm)}  |G| {num(f.full_grad_norm)}" in gradient
        assert f"cos(g_B, G) {num(f.cos_to_full, 2)}" in gradient      # the cosine sub-plot's title and value
    drive(tmp_path, script, size=size)


def test_a_long_title_and_a_replays_status_fit_at_80x24(tmp_path):
    async def script(d: Driver):
        await d.steps(1)
        header = d.text.splitlines()[0]
        assert "Lecture: the batch size and the noise ball — linreg · d=2" in header and "…" not in header
        assert "status   pause · replay" in panel_text(d.app, "counters")
        await d.press("space")
        await d.steps(1)
        assert "status   run · replay" in panel_text(d.app, "counters")
    drive(tmp_path, script, sc=find_scenario("lecture"), replay=True, size=(80, 24))


# ------------------------------------------------------------------ themes
def colours_in(app, panel_id: str) -> set:
    panel = app.query_one(f"#{panel_id}")
    return {seg.style.color for y in range(panel.size.height) for seg in panel.render_line(y)
            if seg.style is not None and seg.style.color is not None}


def test_t_switches_to_the_projector_theme_and_the_charts_take_its_colours(tmp_path):
    async def script(d: Driver):
        await d.steps(60)
        blue, projector_blue = RichColor.parse(COLORS["blue"]), RichColor.parse("#0033a0")
        assert blue in colours_in(d.app, "loss") and projector_blue not in colours_in(d.app, "loss")
        await d.press("t")
        assert d.app.theme == themes.PROJECTOR_THEME and "theme: bsim-projector" in d.notice
        for panel in ("loss", "gradient", "variance", "ball", "counters"):
            have = colours_in(d.app, panel)
            assert not have & {RichColor.parse(c) for c in COLORS.values()}, panel   # none of the dark palette
        assert projector_blue in colours_in(d.app, "loss")             # train loss in the projector's blue
        assert RichColor.parse("#c04000") in colours_in(d.app, "gradient")   # |g_B| in its orange
        await d.press("t")
        assert d.app.theme == themes.DEFAULT_THEME and blue in colours_in(d.app, "loss")
    drive(tmp_path, script)


def test_a_theme_picked_in_the_palette_recolours_the_charts(tmp_path):
    async def script(d: Driver):
        await d.steps(60)
        d.app.theme = "solarized-light"
        await d.pilot.pause()
        expected = themes.chart_palette("solarized-light", d.app.get_css_variables())
        assert RichColor.parse(expected["blue"]) in colours_in(d.app, "loss")
    drive(tmp_path, script)


def test_textuals_own_palette_commands_are_back(tmp_path):
    async def script(d: Driver):
        return [c.title for c in d.app.get_system_commands(d.app.screen)]
    _, titles = drive(tmp_path, script)
    for title in ("Theme", "Keys", "Screenshot", "Screenshot (SVG)", "Set batch size...", "Quit"):
        assert title in titles, title
    assert len(titles) == len(set(titles))


def test_theme_flag_starts_the_app_in_that_theme_and_an_unknown_one_is_one_line(capsys, monkeypatch):
    started = {}

    def fake_run(self, *a, **kw):
        started["theme"] = self.theme
        return 0
    monkeypatch.setattr(app_module.BsimApp, "run", fake_run)
    assert main(["run", "--theme", "bsim-projector", "--batch-size", "4"]) == 0
    assert started["theme"] == "bsim-projector"
    capsys.readouterr()
    assert main(["run", "--theme", "neon"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected one of" in err and "bsim-projector" in err


def test_a_projector_snapshot_at_120x36(snap_compare, tmp_path):
    from test_snapshots import app_after
    app, run_before = app_after(tmp_path, "default", 500, 500)

    async def with_theme(pilot):
        await run_before(pilot)
        await pilot.press("t")
        await pilot.pause()
    assert snap_compare(app, terminal_size=(120, 36), run_before=with_theme)

