"""The bundled lecture (`bsim replay lecture`) replayed in the app, stop by stop: each stop comes once its
change has settled (the measured ball counts: its burn-in of 8 relaxation times is over), the predicted ball
is at least 3 cells across on the plane at 120x36 and 100x30, each caption fits its banner at 80x24, and the
closing caption shows at the end."""

from __future__ import annotations

import pytest
from support.app import drive

from bsim import controls
from bsim.app.widgets.ball import BallPanel
from bsim.scenario import find_scenario

SIZES = ((120, 36), (100, 30))


@pytest.mark.slow
def test_the_lecture_stops_settled_with_a_ball_of_3_cells_and_ends_on_its_closing_caption(tmp_path, monkeypatch):
    planes = []                 # (tick, cells across, the plane's x limits) of every plane drawn
    window = BallPanel.window

    def drawn(panel, f, cw, ch):
        xlim, ylim = window(panel, f, cw, ch)
        planes.append((f.tick, cw, xlim))
        return xlim, ylim
    monkeypatch.setattr(BallPanel, "window", drawn)
    sc = find_scenario("lecture")
    stops = [ev for ev in sc.timeline if ev.caption]
    assert stops[-1].at == sc.recording["final_tick"]      # the closing caption is at the recording's end
    seen = []

    async def script(d):
        runner = d.app.runner
        for ev in stops:
            runner.advance(ev.at - runner.sim.tick)          # the steps up to the stop (no event in between)
            if runner.replay:
                runner.advance(1)                            # the hold before the step: the caption shows
            await d.pilot.pause()
            f = d.app.history.latest
            diameters = []
            for size in SIZES:
                await d.pilot.resize_terminal(*size)
                await d.pilot.pause()
                tick, cw, xlim = planes[-1]
                assert tick == f.tick
                diameters.append(2 * f.ball_radius_theory / ((xlim[1] - xlim[0]) / cw))    # in cells
            await d.pilot.resize_terminal(80, 24)        # the banner's two lines hold the whole caption
            await d.pilot.pause()
            banner = " ".join(d.panel("caption").split())
            await d.pilot.resize_terminal(*SIZES[0])
            seen.append((ev, f, banner, diameters, runner.paused, runner.replay))
            runner.submit(controls.Resume())                 # space

    drive(tmp_path, script, sc=sc, replay=True, size=SIZES[0], paused=False)
    assert len(seen) == len(stops)
    for i, (ev, f, caption, diameters, paused, _) in enumerate(seen):
        assert f.tick == ev.at and paused and " ".join(ev.caption.split()) in caption, (ev.at, caption)
        assert all(dia is not None and dia >= 3 for dia in diameters), (ev.at, diameters)
        if i > 0:    # settled: the change (made at the stop before) is a burn-in (8 relaxation times) behind it
            assert f.ball.burn_in_left == 0 and ev.at - seen[i - 1][0].at >= f.ball.burn_in, ev.at
            assert f.ball_radius is not None, ev.at
    ev, f, caption, _, paused, replay = seen[-1]
    assert "The end" in caption and not replay


def test_the_race_the_closing_caption_names_runs_the_lecture_s_problem(tmp_path, capsys):
    """The lecture is one run; its race is the companion scenario lecture-race, named by the closing caption as a
    command: the same problem, one lane per batch size, no warning (it has no timeline to leave out)."""
    from bsim.cli import main
    closing = find_scenario("lecture").timeline[-1].caption
    command = closing.split("Next, the race: ")[1].split()
    assert command[:3] == ["bsim", "race", "lecture-race"]
    out = tmp_path / "race.csv"
    assert main(command[1:] + ["--headless", "--steps", "20", "--no-timing", "--metrics", str(out)]) == 0
    assert capsys.readouterr().err == ""
    lanes = {line.split(",")[0] for line in out.read_text().splitlines()[1:]}
    assert lanes == {"4", "16", "64", "256"}
    lecture, race = find_scenario("lecture"), find_scenario("lecture-race")
    assert (race.problem, race.optimizer, race.seed) == (lecture.problem, lecture.optimizer, lecture.seed)
