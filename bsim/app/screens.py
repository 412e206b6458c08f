"""Modal screens: the help (?) and a one-line question (type a batch size, an lr, a caption...)."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from bsim.app import keymap
from bsim.stats.cfactor import TEMPERATURE_FORMULA

PANELS_HELP = [
    ("Counters",
     "Where the run stands: steps taken, the epoch and how far through it (Epoch 3 · batch 37/128), and the "
     "examples seen. Below: the batch size, learning rate and sampling the next step will use, the speed, and "
     f"the SGD temperature, which sets how far the iterates wander: {TEMPERATURE_FORMULA['shuffle']}, or "
     f"{TEMPERATURE_FORMULA['replacement']} with replacement."),
    ("Loss",
     "The loss of each shown batch (grey dots: a small sample, so noisy), on the whole training set (blue) and "
     "on held-out data (orange); a purple line at each batch-size change. y: log or linear axis."),
    ("Batch gradient",
     "|g_B| against the full gradient |G| over all N examples, and their cosine. Far from the optimum they "
     "agree (cos near 1); near it |G| goes to 0, |g_B| stays at the noise level and the cosine (running mean "
     "in purple) falls to about 0: the steps are mostly noise."),
    ("Variance across batches",
     "How batch gradients scatter around G, against B on log-log axes: the line is the theory c_B tr(Sigma) "
     "(1/B, 0 at B = N), green dots measured at each B visited; '×1.02 ± 0.02': measured / theory ± its "
     "standard error (under shuffle the theory is at fixed θ: ×0.94 to ×1.06 on five data sets; read this "
     "run's). Purple: the noise scale B_simple = tr(Sigma)/|G|^2 ('> N' past N): above it a bigger batch buys "
     f"little. Press v for a probe: {keymap.PROBE_BATCHES} fresh batches at θ, a red diamond ±2 standard errors "
     "(until B, lr or sampling change)."),
    ("ε-ball",
     "SGD with a fixed learning rate does not converge to θ*; it settles into a ball around it whose size "
     "the noise sets. For two parameters you see the plane: loss contours, the recent iterates, the predicted "
     "(orange) and measured (green) radius, and the last step, on axes that read the offset from θ*. Grow B and "
     "the ball shrinks about as 1/sqrt(B): the trail restarts, the previous ball stays as a pink ring, and when "
     "the new ball would be under 3 cells across the plane zooms and says by how much ('zoom ×4'). Beside it "
     "(L cycles the views) the ball's law: radius against B on log-log axes, the predicted curve for the "
     "sampling in force (the other sampling's in grey), the radius measured at each B visited (● the run's "
     "trail, ◆ the ensemble, bars ±2 standard errors), and the shrink between the smallest and largest B, "
     "measured ± its standard error against predicted ('settling' until both have one), as each radius "
     "under the plane reads its ratio. "
     "LSTM (no θ*): the trail's spread is one run's iterates around their running average over a window; the "
     "chains' is across the chains around their mean at one step. "
     "Least squares with d ≥ N fits every example: the ball is θ* itself (0, exact), and the panel shows "
     "instead the rate at which E|θ-θ*|² falls per step at the B in force, and m* (Ma, Bassily & Belkin)."),
    ("Landscape (in place of the ε-ball for the landscape problems)",
     "The full loss U(θ) (blue; two parameters: its contours) with the chains on it (purple: a histogram, or "
     "the cloud), the run itself in white, each basin named at its minimum with its curvature U″ (λ: the "
     "largest) and the basins' boundary dotted. Under it the fraction of the chains in each basin over the "
     "steps, a grey mark where B changed. Then the escape rate, escapes per chain-step survived in the "
     "starting basin: measured ± its standard error, and predicted, labelled by its kind (Kramers approx., "
     "stability (iid), none) with measured / predicted; on a log scale ├─●─┤ is the measured rate ± 1 "
     "standard error, ◆ the prediction. Press e for chains, then 1 (B = 1) or 9 (B = 256): a small batch "
     "leaves the sharp basin, a large one stays."),
]

def help_text(heading: str = "bsim: what the batch size does to SGD", panels=PANELS_HELP, app: str = keymap.MAIN) -> Text:
    """The help's text: a heading, what each panel shows, then the keys of ``app`` (bsim.app.keymap)."""
    t = Text()
    t.append(heading + "\n\n", style="bold")
    for title, body in panels:
        t.append(title + "\n", style="bold underline")
        t.append(body + "\n\n")
    t.append("Keys\n", style="bold underline")
    for key, what in keymap.help_rows(app):
        t.append(f"  {key:<8}", style="bold")
        t.append(what + "\n")
    t.append("\nEsc, ? or q closes this help.", style="dim")
    return t


def dismiss_once(screen: ModalScreen, result) -> None:
    """Dismiss ``screen`` unless it is already gone: keys sent in one burst (b 1 6 Enter Enter, a paste)
    reach a screen after its first answer popped it, and a second pop would take the app's own screen
    (Textual's ScreenStackError)."""
    if getattr(screen, "_bsim_dismissed", False) or not screen.is_active:
        return
    screen._bsim_dismissed = True
    screen.dismiss(result)


class HelpScreen(ModalScreen[None]):
    """The help (?): a scrolling box of ``help_text``; Esc, ? or q closes it. Subclasses give their own text."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss_help", "close")]

    def text(self) -> Text:
        return help_text()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self.text(), id="help-text")

    def action_dismiss_help(self) -> None:
        dismiss_once(self, None)


class AskScreen(ModalScreen[str | None]):
    """One question, one line of answer; Enter answers, Esc cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, prompt: str, placeholder: str = "", value: str = ""):
        super().__init__()
        self.prompt, self.placeholder, self.value = prompt, placeholder, value
        self._typed_early = False

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-box"):
            yield Static(self.prompt, id="ask-prompt")
            yield Input(value=self.value, placeholder=self.placeholder, id="ask-input")
            yield Static("Enter to apply · Esc to cancel", id="ask-hint")

    def take_key(self, event: events.Key) -> None:
        """A key of the same burst that reached the screen below before this one opened (b 1 6 Enter as one
        write): typed into the field, or Enter answers, instead of being lost."""
        try:
            field = self.query_one("#ask-input", Input)
        except NoMatches:
            return
        if event.key == "enter":
            event.stop()
            dismiss_once(self, field.value)
        elif event.is_printable and event.character:
            event.stop()
            # typing replaces the pre-filled value, as it does when the field has focus and its value is selected
            field.value = (field.value if self._typed_early else "") + event.character
            field.cursor_position = len(field.value)
            self._typed_early = True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        dismiss_once(self, event.value)

    def action_cancel(self) -> None:
        dismiss_once(self, None)
