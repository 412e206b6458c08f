"""The command palette offers every action of the keymap; a command chosen by typing its title does what
its key does. The palette is data (bsim.app.keymap): its commands are checked as data, and the app is
driven once through a representative few (a question, a relative action, an argument, a view, quitting)."""

from __future__ import annotations

import math

from support.app import Driver, drive, palette, small, titles

from bsim.app import keymap
from bsim.app.app import BsimApp
from bsim.app.commands import palette_commands
from bsim.app.screens import AskScreen, HelpScreen


def test_the_palette_is_the_keymaps_then_the_sweep_screens_then_textuals(tmp_path):
    ours = [c.title for c in palette_commands(BsimApp, keymap.MAIN)]
    for needed in ("Set batch size...", "Set learning rate...", "Switch problem: linreg", "Switch problem: logreg",
                   "Switch problem: lstm", "Open scenario...", "Pause / resume", "Single step", "Double batch size",
                   "Halve batch size", "Double learning rate", "Halve learning rate", "Cycle lr scaling",
                   "Cycle sampling", "Faster", "Slower", "Reset", "Start / stop recording", "Add caption...",
                   "Jump to next caption", "Toggle loss log scale", "Screenshot (SVG)", "Help", "Quit"):
        assert needed in ours, needed
    assert [f"Batch size {2 ** k}" for k in range(9)] == [t for t in ours if t.startswith("Batch size ")]

    async def script(d: Driver):
        return titles(d.app)
    _, have = drive(tmp_path, script)
    assert have[:len(ours) + 1] == [*ours, "Open sweep results..."]
    assert "Keys" in have[len(ours) + 1:] and len(have) == len(set(have))


def test_each_command_runs_the_action_of_its_row():
    """A command's callback is the app's action of the keymap row, with the row's argument."""
    commands = {c.title: c for c in palette_commands(BsimApp, keymap.MAIN)}
    assert commands["Batch size 128"].callback.func is BsimApp.action_preset
    assert commands["Batch size 128"].callback.args == ("8",) and keymap.PRESETS["8"] == 128
    assert commands["Set lr scaling: sqrt"].callback.args == ("sqrt",)
    assert commands["Double batch size"].callback.func is BsimApp.action_double_batch
    assert commands["Double batch size"].help.endswith("(])") and commands["Quit"].help == "quit (q)"
    assert not commands["Batch size 1"].discover and commands["Switch problem: lstm"].discover


def test_palette_commands_act_on_the_run(tmp_path):
    """A question, a relative action, a command with an argument (not listed until typed), a view, quitting."""
    async def script(d: Driver):
        sim = d.sim
        await palette(d, "Set batch size...")
        assert isinstance(d.app.screen, AskScreen)
        await d.type_answer("32")
        assert sim.batch_size == 32
        await palette(d, "Double batch size")
        assert sim.batch_size == 64
        await palette(d, "Batch size 128")
        assert sim.batch_size == 128
        await palette(d, "Set lr scaling: sqrt")
        assert sim.lr_scaling == "sqrt"
        await palette(d, "Help")
        assert isinstance(d.app.screen, HelpScreen)
        await d.press("escape")
        await palette(d, "Quit")
    app, _ = drive(tmp_path, script)
    assert app.return_code == 0


def test_an_opened_scenario_replaces_the_run_and_a_bad_one_is_a_notice(tmp_path):
    """The answer to "Open scenario..." (the palette's question), given straight to the app."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[optimizer]\nlr = -1\n")

    async def script(d: Driver):
        d.app.open_scenario_text(str(bad))
        assert "bad.toml:2: optimizer.lr" in d.errors[-1] and d.sim.problem.kind == "linreg"
        d.app.open_scenario_text("no-such-scenario")
        assert "no such scenario" in d.errors[-1]
        old = d.app.runner
        d.app.open_scenario_text("logreg")
        await d.pilot.pause()
        assert d.app.runner is not old and d.sim.problem.kind == "logreg"
        assert d.notice.startswith("opened logreg") and "logreg · d=2 · N=1024" in d.text
        await d.steps(5)
        assert d.app.history.latest.problem == "logreg" and math.isfinite(d.app.history.latest.train_loss)
    drive(tmp_path, script, sc=small())
