"""The race screen's help (?): what each panel shows and the keys, in the main help's style."""

from __future__ import annotations

from rich.text import Text

from bsim.app import keymap
from bsim.app.screens import HelpScreen, help_text

PANELS_HELP = [
    ("The race",
     "One lane per batch size, all from the same θ_0, the same data and the same seed: each lane is the run "
     "`bsim run --batch-size B` would make. The lanes keep step on one axis (the footer names it): samples "
     "seen (the fair budget), steps taken, or seconds of this machine's compute. The lane furthest behind "
     "steps next."),
    ("Loss of each lane",
     "Each lane's loss on the whole training set (solid) and on held-out data (dashed), one colour per lane, "
     "against the race's axis from its start. By samples, a small batch takes many small noisy steps and a "
     "large one few precise ones: who is ahead depends on the budget you count."),
    ("ε-balls, one scale",
     "Each lane's iterates around θ* on one scale, to compare by eye: the radius falls about as 1/sqrt(B). "
     "Under each: the measured radius (green, ×ratio ± se) and the prediction (orange) with its kind. Over two "
     "parameters: |θ-θ*| on one log scale; the LSTM (no θ*): the spread around the running average."),
    ("Lanes",
     "Per lane: steps, the cost to each loss target on the race's axis (★ first; ★ lane: the leader), "
     "samples, seconds, samples/s, losses, train and test accuracy, the gap train − test in points (± se "
     "over --chains K) and the ball's radius; on a landscape: the share in the starting basin, the chains "
     "that left and the measured escape rate."),
]


def race_help_text() -> Text:
    return help_text("bsim race: batch sizes side by side from one start", PANELS_HELP, keymap.RACE)


class RaceHelpScreen(HelpScreen):
    """The main help's box and keys, with the race's text."""

    def text(self) -> Text:
        return race_help_text()
