"""The command palette offers every action; each command, chosen by typing its title, does what it says."""

from __future__ import annotations

import math

from support.app import Driver, drive, palette, small, titles

from bsim import controls
from bsim.app.screens import AskScreen, HelpScreen


def test_the_palette_offers_every_key_action(tmp_path):
    async def script(d: Driver):
        return titles(d.app)
    _, have = drive(tmp_path, script)
    for needed in ("Set batch size...", "Set learning rate...", "Switch problem: linreg", "Switch problem: logreg",
                   "Switch problem: lstm", "Open scenario...", "Pause / resume", "Single step", "Double batch size",
                   "Halve batch size", "Double learning rate", "Halve learning rate", "Cycle lr scaling",
                   "Cycle sampling", "Faster", "Slower", "Reset", "Start / stop recording", "Add caption...",
                   "Jump to next caption", "Toggle loss log scale", "Screenshot (SVG)", "Help", "Quit"):
        assert needed in have, needed
    assert [f"Batch size {2 ** k}" for k in range(9)] == [t for t in have if t.startswith("Batch size ")]
    assert len(have) == len(set(have))


def test_palette_commands_change_the_simulation(tmp_path):
    async def script(d: Driver):
        sim = d.sim
        await palette(d, "Set batch size...")
        assert isinstance(d.app.screen, AskScreen)
        await d.type_answer("32")
        assert sim.batch_size == 32
        await palette(d, "Double batch size")
        assert sim.batch_size == 64
        await palette(d, "Halve batch size")
        assert sim.batch_size == 32
        await palette(d, "Batch size 128")
        assert sim.batch_size == 128
        await palette(d, "Set learning rate...")
        await d.type_answer("0.02")
        assert sim.lr == 0.02
        await palette(d, "Set learning rate...")
        await d.type_answer("fast")
        assert sim.lr == 0.02 and "expected a number > 0" in d.errors[-1]
        await palette(d, "Double learning rate")
        assert sim.lr == 0.04
        await palette(d, "Halve learning rate")
        assert sim.lr == 0.02
        await palette(d, "Set lr scaling: sqrt")
        assert sim.lr_scaling == "sqrt"
        await palette(d, "Cycle lr scaling")
        assert sim.lr_scaling == "none"
        await palette(d, "Set sampling: replacement")
        assert sim.sampling == "replacement"
        await palette(d, "Cycle sampling")
        assert sim.sampling == "shuffle"
    drive(tmp_path, script)


def test_palette_run_control_and_views(tmp_path):
    async def script(d: Driver):
        r = d.app.runner
        await palette(d, "Pause / resume")
        assert not r.paused
        await palette(d, "Pause / resume")
        assert r.paused
        await palette(d, "Single step")
        assert d.sim.step_count == 1
        await palette(d, "Slower")
        assert r.speed == controls.SPEEDS[-2]
        await palette(d, "Faster")
        assert r.speed is None
        await d.steps(10)
        await palette(d, "Reset")
        assert d.sim.step_count == 0
        await palette(d, "Toggle loss log scale")
        assert not d.app.query_one("#loss").log_scale
        await palette(d, "Screenshot (SVG)")
        assert len(list((d.tmp / "screenshots").glob("*.svg"))) == 1
        await palette(d, "Start / stop recording")
        assert r.recorder is not None
        await palette(d, "Add caption...")
        await d.type_answer("hello")
        assert d.app.runner.action_log[-1][1].text == "hello"
        await palette(d, "Start / stop recording")
        assert r.recorder is None and len(list((d.tmp / "recordings").glob("*.toml"))) == 1
        await palette(d, "Jump to next caption")
        assert "no caption ahead" in d.errors[-1]
        await palette(d, "Help")
        assert isinstance(d.app.screen, HelpScreen)
        await d.press("escape")
        await palette(d, "Quit")
    app, _ = drive(tmp_path, script)
    assert app.return_code == 0


def test_palette_switches_problem_and_opens_a_scenario(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optimizer]\nlr = -1\n")

    async def script(d: Driver):
        await palette(d, "Switch problem: lstm")
        assert d.sim.problem.kind == "lstm"
        await palette(d, "Switch problem: linreg")
        assert d.sim.problem.kind == "linreg"
        await palette(d, "Open scenario...")
        await d.type_answer(str(bad))
        assert "bad.toml:2: optimizer.lr" in d.errors[-1] and d.sim.problem.kind == "linreg"
        await palette(d, "Open scenario...")
        await d.type_answer("no-such-scenario")
        assert "no such scenario" in d.errors[-1]
        old = d.app.runner
        await palette(d, "Open scenario...")
        await d.type_answer("logreg")
        assert d.app.runner is not old and d.sim.problem.kind == "logreg"
        assert d.notice.startswith("opened logreg") and "logreg · d=2 · N=1024" in d.text
        await d.steps(5)
        assert d.app.history.latest.problem == "logreg" and math.isfinite(d.app.history.latest.train_loss)
    drive(tmp_path, script, sc=small())
