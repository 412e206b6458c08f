"""Every key of bsim's apps, once: one row per key, read by the bindings, the help, the palette and the footer.

A row (``Key``) says which keys press it, which action of the app it runs, the footer's label, the
line the help (?), the palette's description and the README's key table show, the palette's
title, the footer group, and which apps bind it (``MAIN``: bsim run, ``RACE``: bsim race, ``SWEEP``:
the sweep screen, ``SWEEP_APP``: ``bsim sweep --show --app`` around it). The option
lists in the texts (lr scalings, samplings, momenta, ensemble sizes, the batch-size presets) are
written from the tuples the runs use, so they cannot drift apart. ``bindings(app)``,
``help_rows(app)``, ``palette(app)`` and ``markdown_table(app)`` are the only readers.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from bsim.actions import CHAIN_COUNTS, MOMENTA
from bsim.app.widgets.loss import WINDOW
from bsim.scenario import LR_SCALINGS, PROBLEMS, SAMPLINGS

#: the apps (and the sweep screen, which the main app and the sweep app both show) a row can belong to
MAIN, RACE, SWEEP, SWEEP_APP = "main", "race", "sweep screen", "sweep app"
BOTH = (MAIN, RACE)

#: keys 1-9: batch sizes 1, 2, 4, ... 256
PRESETS = {str(k): 2 ** (k - 1) for k in range(1, 10)}
#: batches of the variance probe (v): the standard error of its mean is ~1/8 of the spread
PROBE_BATCHES = 64


def either(options, last: str = " or ") -> str:
    """``(1, 64, 256)`` -> "1, 64 or 256"; ``last=", "``: "1, 64, 256"."""
    words = [f"{o:g}" if isinstance(o, float) else str(o) for o in options]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + last + words[-1]


@dataclass(frozen=True)
class Key:
    """One key of an app (or, with no ``keys``, a command only the palette offers).

    ``keys``: Textual's key names, comma-separated; ``display``: how the help and the footer write
    them (default: the first name). ``action``: the app's ``action_<name>``; ``each``: (key, argument,
    shown) for a row that is one binding and one palette command per argument (the batch-size presets,
    the problems). ``hidden``: bound, but in no list (the old f and F). ``bound``: False where Textual
    binds the key itself (ctrl+p). ``discover``: the palette lists it before anything is typed.
    ``priority``: the key goes to this binding before a focused widget sees it.
    """

    keys: str
    action: str
    label: str
    help: str
    title: str | None = None
    group: str | None = None
    show: bool = False
    display: str | None = None
    apps: tuple[str, ...] = (MAIN,)
    each: tuple[tuple[str, str, str], ...] = ()
    hidden: bool = False
    bound: bool = True
    discover: bool = True
    priority: bool = False

    @property
    def shown_keys(self) -> str:
        return self.display or self.keys.split(",")[0]

    def description(self) -> str:
        """The palette's second line: the help, and the key that does the same."""
        return f"{self.help} ({self.shown_keys})" if self.keys else self.help


def _presets() -> tuple[tuple[str, str, str], ...]:
    return tuple((k, k, str(b)) for k, b in PRESETS.items())


_sizes = list(PRESETS.values())

ROWS: tuple[Key, ...] = (
    Key("space", "toggle_pause", "pause", "pause / resume", "Pause / resume", show=True),
    Key("space", "toggle_pause", "pause", "pause / resume every lane", "Pause / resume", show=True, apps=(RACE,)),
    Key("n", "step", "step", "one step (while paused)", "Single step"),
    Key("n,full_stop", "step", "round", "one round (while paused): the lane ahead steps once, the others catch up",
        "One round", display="n .", apps=(RACE,)),
    Key("a", "add_lane", "add lane", "add a lane (type its batch size)", "Add lane...", "lanes", True, apps=(RACE,)),
    Key("x", "remove_lane", "remove lane", "remove a lane (type its batch size)", "Remove lane...", "lanes", True,
        apps=(RACE,)),
    Key("left_square_bracket", "halve_batch", "B/2", "halve the batch size", "Halve batch size", "B", True, "["),
    Key("right_square_bracket", "double_batch", "B×2", "double the batch size", "Double batch size", "B", True, "]"),
    Key(",".join(PRESETS), "preset", "B", f"batch size {', '.join(map(str, _sizes[:3]))}, ... {_sizes[-1]}",
        "Batch size {}", display=f"1-{len(PRESETS)}", each=_presets(), discover=False),
    Key("b", "ask_batch_size", "type B", "type a batch size", "Set batch size..."),
    Key("minus", "halve_lr", "lr/2", "halve the lr", "Halve learning rate", "lr", True, "-"),
    Key("plus,equals_sign", "double_lr", "lr×2", "double the lr", "Double learning rate", "lr", True, "+"),
    Key("", "ask_lr", "lr", "type a learning rate (a number > 0)", "Set learning rate..."),
    Key("l", "cycle_lr_scaling", "scaling", f"cycle how lr follows B ({either(LR_SCALINGS, ', ')})",
        "Cycle lr scaling"),
    Key("", "set_lr_scaling", "scaling", "how lr follows a batch-size change", "Set lr scaling: {}",
        each=tuple(("", mode, mode) for mode in LR_SCALINGS), discover=False),
    Key("s", "cycle_sampling", "sampling", f"cycle sampling ({either(SAMPLINGS, ', ')})", "Cycle sampling"),
    Key("", "set_sampling", "sampling", "how each batch is drawn", "Set sampling: {}",
        each=tuple(("", mode, mode) for mode in SAMPLINGS), discover=False),
    Key("m", "cycle_momentum", "momentum", f"cycle momentum ({either(MOMENTA, ', ')})", "Cycle momentum"),
    Key("M,shift+m", "ask_momentum", "type momentum", "type a momentum in [0, 1)", "Set momentum...", display="M"),
    Key("less_than_sign", "slower", "slower", "slower: a lower steps/s cap", "Slower", "speed", True, "<"),
    Key("greater_than_sign", "faster", "faster", "faster: a higher steps/s cap", "Faster", "speed", True, ">"),
    Key("less_than_sign", "slower", "slower", "slower: fewer lane steps per second, all lanes together", "Slower",
        "speed", True, "<", (RACE,)),
    Key("greater_than_sign", "faster", "faster", "faster: more lane steps per second, all lanes together", "Faster",
        "speed", True, ">", (RACE,)),
    Key("f", "faster", "faster", "faster (the old key)", hidden=True),
    Key("F,shift+f", "slower", "slower", "slower (the old key)", hidden=True),
    Key("r", "reset", "reset", "reset to step 0, keeping the settings", "Reset", show=True),
    Key("p", "switch_problem", "problem", f"next problem ({either(PROBLEMS, ', ')})", "Next problem", show=True),
    Key("", "switch_problem", "problem", "the bundled scenario of that problem", "Switch problem: {}",
        each=tuple(("", kind, kind) for kind in PROBLEMS)),
    Key("", "open_scenario", "open", "a bundled scenario or a TOML file", "Open scenario..."),
    Key("R,shift+r", "toggle_recording", "record", "start / stop recording into recordings/",
        "Start / stop recording", display="R", apps=BOTH),
    Key("c", "ask_caption", "caption", "add a caption (while recording)", "Add caption..."),
    Key("j", "jump", "next caption", "jump to the next caption (replays)", "Jump to next caption"),
    Key("y", "toggle_log", "log y", "loss axis log / linear", "Toggle loss log scale", apps=BOTH),
    Key("v", "probe", "probe", f"variance probe: {PROBE_BATCHES} fresh batches at the current parameters",
        f"Probe the gradient noise: {PROBE_BATCHES} fresh batches"),
    Key("e", "cycle_chains", "chains", f"ensemble: {either(CHAIN_COUNTS)} chains, drawn as a cloud in the ε-ball "
        "or the landscape",
        "Cycle ensemble size"),
    Key("z", "refit_ball", "fit ball", "re-fit the ε-ball's plane now (it zooms by itself when the ball leaves "
        "3 cells .. the plane)", "Re-fit the ε-ball's scale"),
    Key("L,shift+l", "cycle_ball_view", "ball view", "ε-ball panel: plane and ball's law (radius against B) side by "
        "side, the law alone, the plane alone", "Cycle the ε-ball's view", display="L"),
    Key("z", "refit_balls", "fit balls", "fit the balls' shared scale again", "Re-fit the balls' scale",
        apps=(RACE,)),
    Key("w", "toggle_window", "window", f"loss chart: the last {WINDOW:,} steps / the whole run",
        "Toggle loss window"),
    Key("w", "toggle_window", "window", "loss chart: a sliding window / the whole race", "Toggle loss window",
        apps=(RACE,)),
    Key("x", "toggle_epochs", "steps/epochs", "loss chart against steps / epochs", "Toggle loss x axis"),
    Key("d", "toggle_data", "data", "the data and model panel in place of the batch gradient", "Toggle data panel"),
    Key("t", "toggle_projector", "projector theme", "projector theme: black on white, and back", "Projector theme",
        apps=(MAIN, RACE, SWEEP_APP)),
    Key("ctrl+s", "screenshot_svg", "SVG", "SVG screenshot into screenshots/ (in a browser: a download)",
        "Screenshot (SVG)"),
    Key("ctrl+s", "screenshot_svg", "SVG", "SVG screenshot into screenshots/", "Screenshot (SVG)", apps=(RACE,)),
    Key("ctrl+p", "command_palette", "palette", "command palette: every action, and Theme, Keys, Screenshot",
        apps=BOTH, bound=False),
    Key("question_mark", "help", "help", "this help: what each panel shows, and the keys", "Help", show=True, display="?", apps=BOTH),
    Key("q", "quit", "quit", "quit", "Quit", show=True, apps=BOTH),
    Key("escape,q", "close", "close", "close the sweep screen (on its own: quit)", show=True, apps=(SWEEP,)),
    Key("r", "reload", "reload", "read the sweep's CSV again", show=True, apps=(SWEEP,)),
    Key("ctrl+s", "save_svg", "SVG", "SVG screenshot into screenshots/", show=True, apps=(SWEEP,), priority=True),
)


def rows(app: str) -> list[Key]:
    """The rows of ``app`` (MAIN, RACE, SWEEP or SWEEP_APP), in the order of its help and footer."""
    return [row for row in ROWS if app in row.apps]


def bindings(app: str) -> list[Binding]:
    """The app's BINDINGS: one per row (one per argument of an ``each`` row), in the keymap's order."""
    out = []
    for row in rows(app):
        if not row.bound or not row.keys:
            continue
        group = Binding.Group(row.group) if row.group else None
        if row.each:
            out += [Binding(key, f"{row.action}({arg!r})", f"{row.label}={shown}", show=False)
                    for key, arg, shown in row.each if key]
        else:
            out.append(Binding(row.keys, row.action, row.label, show=row.show, key_display=row.display,
                               priority=row.priority, group=group))
    return out


def help_rows(app: str) -> list[tuple[str, str]]:
    """(keys, what they do) for the help screen: every row with a key that is not hidden."""
    return [(row.shown_keys, row.help) for row in rows(app) if row.keys and not row.hidden]


def palette(app: str) -> list[tuple[str, str, str, tuple[str, ...], bool]]:
    """(title, description, action, arguments, discoverable) of every palette command of ``app``."""
    out = []
    for row in rows(app):
        if row.title is None:
            continue
        if row.each:
            out += [(row.title.format(shown), f"{row.label}={shown} ({key})" if key else row.description(),
                     row.action, (arg,), row.discover) for key, arg, shown in row.each]
        else:
            out.append((row.title, row.description(), row.action, (), row.discover))
    return out


def markdown_table(app: str) -> str:
    """The README's key table of ``app``: a Markdown table of ``help_rows``."""
    lines = ["| key | what it does |", "| --- | --- |"]
    for keys, what in help_rows(app):
        lines.append(f"| {' '.join(f'`{k}`' for k in keys.split())} | {what.replace('|', '/')} |")
    return "\n".join(lines)
