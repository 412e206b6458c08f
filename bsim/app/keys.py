"""The keys that change the run (not the view), and the typed answers of b, M and the lr.

``SettingKeys`` is mixed into bsim run's app (bsim.app.app.BsimApp), whose base (bsim.app.base.AppBase)
gives it ``send``, ``ask`` and ``_notice``, and which gives it ``_state``, ``_current``, ``history`` and
``scenario``. Which key runs which method is bsim.app.keymap's. Relative keys (``[ ] - + l s m``) send
relative actions: the runner resolves them against the settings it reaches, so quick presses never act
on a stale frame.
"""

from __future__ import annotations

from bsim import actions, controls
from bsim.app import answers
from bsim.app.keymap import PRESETS, PROBE_BATCHES
from bsim.scenario import PROBLEMS


def _next(options, current):
    options = list(options)
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


class SettingKeys:
    """The key actions of the app that change the run (not the view): each sends one bsim.actions action or
    one bsim.controls control to the runner (the whole path of a key: BsimApp's docstring)."""

    def _answer(self, parse, text: str | None) -> None:
        """Send the action a typed answer reads as (``bsim.app.answers``), or say what was expected."""
        if text is None or not text.strip():
            return
        try:
            self.send(parse(text))
        except answers.BadAnswer as exc:
            self._notice("error", str(exc))

    def action_halve_batch(self) -> None:
        """[ : halve the batch size in force when the runner applies it."""
        self.send(actions.ScaleBatchSize(0.5))

    def action_double_batch(self) -> None:
        """] : double the batch size in force when the runner applies it."""
        self.send(actions.ScaleBatchSize(2))

    def action_preset(self, key: str) -> None:
        self.send(actions.SetBatchSize(PRESETS[key]))

    def action_ask_batch_size(self) -> None:
        self.ask("Batch size (an integer from 1 to N):", self.set_batch_size_text, str(self._current()[0]))

    def set_batch_size_text(self, text: str | None) -> None:
        self._answer(answers.batch_size_action, text)

    def action_halve_lr(self) -> None:
        self.send(actions.ScaleLR(0.5))

    def action_double_lr(self) -> None:
        self.send(actions.ScaleLR(2))

    def action_ask_lr(self) -> None:
        self.ask("Learning rate (a number > 0):", self.set_lr_text, f"{self._current()[1]:g}")

    def set_lr_text(self, text: str | None) -> None:
        self._answer(answers.lr_action, text)

    def action_cycle_momentum(self) -> None:
        """m : 0 -> 0.5 -> 0.9 -> 0, from the momentum in force when the runner applies it."""
        self.send(actions.CycleMomentum())

    def action_ask_momentum(self) -> None:
        f = self.history.latest
        now = f.momentum if f is not None else self.scenario.optimizer.momentum
        self.ask("Momentum (a number in [0, 1); 0 is plain SGD):", self.set_momentum_text, f"{now:g}")

    def set_momentum_text(self, text: str | None) -> None:
        self._answer(answers.momentum_action, text)

    def action_cycle_lr_scaling(self) -> None:
        self.send(actions.CycleLRScaling())

    def action_set_lr_scaling(self, mode: str) -> None:
        self.send(actions.SetLRScaling(mode))

    def action_cycle_sampling(self) -> None:
        self.send(actions.CycleSampling())

    def action_set_sampling(self, mode: str) -> None:
        self.send(actions.SetSampling(mode))

    def action_reset(self) -> None:
        self.send(actions.Reset())

    def action_switch_problem(self, kind: str | None = None) -> None:
        f = self.history.latest
        current = f.problem if f is not None else self.scenario.problem.kind
        self.send(actions.SwitchProblem(kind or _next(PROBLEMS, current)))

    def action_ask_caption(self) -> None:
        rs = self._state()
        if rs is None or not rs.recording:
            self._notice("error", "captions are for recordings: press R to start recording first")
            return
        self.ask("Caption (shown as a banner when the recording is replayed):", self.add_caption_text)

    def add_caption_text(self, text: str | None) -> None:
        if text is not None and text.strip():
            self.send(controls.AddCaption(text))

    def action_jump(self) -> None:
        self.send(controls.JumpToCaption())

    def action_probe(self) -> None:
        """The variance probe: PROBE_BATCHES fresh batches at the current parameters (runner's thread)."""
        self.send(controls.Probe(PROBE_BATCHES))
