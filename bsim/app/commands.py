"""The command palette (ctrl+p): every action of the app by name, the key actions included."""

from __future__ import annotations

from textual.app import SystemCommand
from textual.command import CommandPalette
from textual.message import Message
from textual.widgets import Button, Input, OptionList

from bsim.scenario import LR_SCALINGS, PROBLEMS, SAMPLINGS

PRESETS = {str(k): 2 ** (k - 1) for k in range(1, 10)}   # keys 1-9: B = 1, 2, 4, ... 256
#: batches of the variance probe (v): the standard error of its mean is ~1/8 of the spread
PROBE_BATCHES = 64


class OnceCommandPalette(CommandPalette):
    """Textual's command palette, that runs one command and closes once.

    Two Enters in one burst after ctrl+p queue two submits: Textual's palette
    dismisses itself on the first and again on the second, which pops the app's
    own screen (ScreenStackError), and would run the command twice. Once the
    palette has dismissed itself (or is not the top screen), a submit, a button
    press or an option choice reaching it is dropped.
    """

    _CHOICES = (Input.Submitted, Button.Pressed, OptionList.OptionSelected)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._chosen = False

    async def _on_message(self, message: Message) -> None:
        if isinstance(message, self._CHOICES) and (self._chosen or not self.is_active):
            message.stop()
            return
        await super()._on_message(message)

    def dismiss(self, result=None):
        self._chosen = True
        return super().dismiss(result)


def palette_commands(app):
    """SystemCommands for ``app`` (a BsimApp); the sweep results screen, when installed, adds its own."""
    cmd = SystemCommand
    yield cmd("Set batch size...", "Type an exact batch size (b)", app.action_ask_batch_size)
    yield cmd("Double batch size", "B x 2 (])", app.action_double_batch)
    yield cmd("Halve batch size", "B / 2 ([)", app.action_halve_batch)
    for k, b in PRESETS.items():
        yield cmd(f"Batch size {b}", f"preset key {k}", lambda k=k: app.action_preset(k), discover=False)
    yield cmd("Set learning rate...", "Type an exact learning rate", app.action_ask_lr)
    yield cmd("Double learning rate", "lr x 2 (+)", app.action_double_lr)
    yield cmd("Halve learning rate", "lr / 2 (-)", app.action_halve_lr)
    yield cmd("Cycle lr scaling", "none -> linear -> sqrt (l)", app.action_cycle_lr_scaling)
    for mode in LR_SCALINGS:
        yield cmd(f"Set lr scaling: {mode}", "how lr follows a batch-size change",
                  lambda m=mode: app.action_set_lr_scaling(m), discover=False)
    yield cmd("Cycle sampling", "shuffle -> iid -> replacement (s)", app.action_cycle_sampling)
    for mode in SAMPLINGS:
        yield cmd(f"Set sampling: {mode}", "how each batch is drawn",
                  lambda m=mode: app.action_set_sampling(m), discover=False)
    yield cmd("Cycle momentum", "0 -> 0.5 -> 0.9 -> 0 (m)", app.action_cycle_momentum)
    yield cmd("Set momentum...", "Type a momentum in [0, 1) (M)", app.action_ask_momentum)
    for kind in PROBLEMS:
        yield cmd(f"Switch problem: {kind}", "the bundled scenario of that problem (p cycles)",
                  lambda k=kind: app.action_switch_problem(k))
    yield cmd("Open scenario...", "A bundled scenario or a TOML file", app.action_open_scenario)
    yield cmd("Pause / resume", "space", app.action_toggle_pause)
    yield cmd("Single step", "one step while paused (n)", app.action_step)
    yield cmd("Faster", "raise the steps-per-second cap (>)", app.action_faster)
    yield cmd("Slower", "lower the steps-per-second cap (<)", app.action_slower)
    yield cmd("Reset", "back to step 0, keeping the settings (r)", app.action_reset)
    yield cmd("Start / stop recording", "record into recordings/ (R)", app.action_toggle_recording)
    yield cmd("Add caption...", "while recording (c)", app.action_ask_caption)
    yield cmd("Jump to next caption", "fast-forward a replay (j)", app.action_jump)
    yield cmd(f"Probe the gradient noise: {PROBE_BATCHES} fresh batches",
              "their spread |g_B - G|^2 against c_B tr(Sigma), at the current parameters (v)", app.action_probe)
    yield cmd("Toggle loss log scale", "log or linear y axis (y)", app.action_toggle_log)
    yield cmd("Cycle ensemble size", "1, 64, 256, 1024 chains: the ε-ball as a cloud (e)", app.action_cycle_chains)
    yield cmd("Re-fit the ε-ball's scale", "it holds across changes until then (z)", app.action_refit_ball)
    yield cmd("Toggle loss window", "the last 2000 steps or the whole run (w)", app.action_toggle_window)
    yield cmd("Toggle loss x axis", "steps or epochs (x)", app.action_toggle_epochs)
    yield cmd("Toggle data panel", "the data and the model's fit, in place of the batch gradient (d)",
              app.action_toggle_data)
    yield cmd("Projector theme", "high-contrast black on white, and back (t)", app.action_toggle_projector)
    yield cmd("Screenshot (SVG)", "into screenshots/ (ctrl+s)", app.action_screenshot_svg)
    yield cmd("Help", "what each panel shows (?)", app.action_help)
    yield cmd("Quit", "q", app.action_quit)
    try:   # the sweep results screen, when installed, adds its own commands
        from bsim.app import sweep_screen
    except ImportError:
        sweep_screen = None
    if sweep_screen is not None and hasattr(sweep_screen, "palette_commands"):
        yield from sweep_screen.palette_commands(app)
