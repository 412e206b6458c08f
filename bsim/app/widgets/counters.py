"""Counters: where the run stands (steps, epochs, samples) and the settings in force."""

from __future__ import annotations

from textual.strip import Strip

from bsim.app.format import count, noise_scale_text, num, rate
from bsim.app.history import FrameBuffer
from bsim.app.widgets.panel import Panel, text_strip, wrap

#: labels of the narrow counters (80 and 100 columns), each at most NARROW_LABEL - 1 cells
SHORT = {"batch size": "B", "samples/s": "smpl/s", "temperature": "temp", "momentum": "momentum", "barrier/T": "ΔU/T",
         "lr scaling": "scaling", "train acc": "trn acc", "test acc": "test acc"}
NARROW_LABEL = 9
#: the rows a short panel keeps, in this order of importance (the speed: a teacher sets the pace)
KEEP = ("step", "", "batch size", "lr", "lr scaling", "momentum", "sampling", "speed", "status", "B_simple",
        "train acc", "test acc", "steps/s", "samples", "device")
#: on a landscape a short panel keeps its temperature too, with the formula below it, and the barrier over T
LANDSCAPE_KEEP = ("temperature", "barrier/T")


def speed_text(speed, narrow: bool = False) -> str:
    """The steps/s cap as the counters show it, with the keys that change it."""
    if speed is None:
        return "max  < >"
    return f"≤{speed:,}/s  < >" if narrow else f"≤{speed:,} steps/s  < >"


def accuracy_rows(f, narrow: bool = False) -> list[tuple[str, str, str | None]]:
    """Train and test accuracy (classifiers only: the frame's train_acc, test_acc), as percentages,
    marked measured: the fraction of the whole set classified right at the current parameters."""
    if f.train_acc is None:
        return []
    tag = " meas" if narrow else "  measured"
    rows = [("train acc", f"{100 * f.train_acc:.1f}%{tag}", None)]
    if f.test_acc is not None:
        rows.append(("test acc", f"{100 * f.test_acc:.1f}%{tag}", None))
    return rows


def landscape_rows(land) -> list[tuple[str | None, str, str | None]]:
    """A landscape's temperature in place of the ε-ball's: the tilted wells' T = lr c_B sigma_b^2 / 2 (the
    Langevin temperature of Kramers' rate, issue 20) with its formula, and the starting basin's barrier over
    T; none for the non-uniform minima, whose noise grows with the distance to the minimum (no temperature:
    the landscape panel shows rho)."""
    if land.temperature is None:
        return []
    rows = [("temperature", num(land.temperature), None), (None, "= lr c_B σ_b²/2", "axis")]
    if land.barrier_over_t is not None:
        start = land.basins[land.start_basin].label
        rows.append(("barrier/T", f"{num(land.barrier_over_t, 3)} ({start})", None))
    return rows


def schedule_rows(f) -> list[tuple[str | None, str, str | None]]:
    """The scenario's [schedule]: each next change and when (the frame's schedule_next), and the adaptive
    batch size's test statistic, measured at its last check (B grows when it is above 1)."""
    rows: list[tuple[str | None, str, str | None]] = []
    for i, part in enumerate(p for p in f.schedule_next.split("; ") if p):
        rows.append(("next" if i == 0 else None, part, "yellow"))
    if f.batch_test_label:
        value = "measuring…" if f.batch_test is None else f"{num(f.batch_test)} measured"
        rows.append(("B test", value, "yellow"))
        rows.append((None, f"{f.batch_test_label}; > 1 grows B", "axis"))
    return rows


class CountersPanel(Panel):
    """The run's counters (step, epoch and the progress through it, samples), the settings in force for the
    next step, the rates, the runner's state (speed, paused, recording) and the last notices.

    Owns: its layout (wide or narrow labels, which rows a short panel keeps). Reads: the latest frame and
    the notices in the FrameBuffer. Computes nothing: every number is the frame's.
    """

    TITLE = "Counters"

    def __init__(self, history: FrameBuffer, frozen_rates: bool = False, **kwargs):
        super().__init__(history, **kwargs)
        self.frozen_rates = frozen_rates   # tests: no wall-clock numbers on screen

    def rows(self, history: FrameBuffer, narrow: bool = False) -> list[tuple[str | None, str, str | None]]:
        """(label, value, colour) per line; a label None continues the row above (indented, no label)."""
        f = history.latest
        if f is None:
            return [("", "starting…", None)]
        rs = f.runner
        b, lr = f.next_batch_size, f.next_lr
        if rs is None:
            status, scol = f.status, None
        elif f.status == "diverged":
            status, scol = "diverged", "red"
        elif rs.paused:
            status, scol = "paused", "yellow"
        else:
            status, scol = "running", "green"
        if rs is not None and rs.recording:
            status += " · ● rec"
        if rs is not None and rs.replay:
            status += " · replay"
        if narrow and len(status) > 14:     # "running · replay" in 14 cells: "run · replay"
            status = status.replace("running", "run").replace("paused", "pause")
        sps = None if self.frozen_rates else f.steps_per_sec
        xps = None if self.frozen_rates else f.samples_per_sec
        if rs is not None and rs.paused:
            sps = xps = None
        epoch = f"Epoch {f.epochs_done + 1} · {'' if narrow else 'batch '}{f.batch_in_epoch}/{f.batches_per_epoch}"
        rows = [
            ("step", count(f.step), None),
            ("", epoch, "white"),
            ("epochs", f"{f.epoch:.3f}", None),
            ("samples", count(f.samples), None),
            ("batch size", f"{b} of {count(f.n_train)}" if narrow else f"{b}  (N = {count(f.n_train)})", "blue"),
            ("lr", num(lr, 4), None),
            ("lr scaling", f.lr_scaling, None),
        ]
        if f.momentum:
            rows.append(("momentum", num(f.momentum), None))
        rows += [
            ("sampling", f.sampling, None),
            ("steps/s", rate(sps, ""), None),
            ("samples/s", rate(xps, ""), None),
            ("device", f.device, None),
            ("speed", speed_text(rs.speed if rs is not None else None, narrow), None),
            ("status", status, scol),
        ]
        if f.stats is not None and f.stats.noise_scale_smoothed is not None:   # over a window of steps (bsim.stats)
            text, dominated = noise_scale_text(f.stats.noise_scale_smoothed, f.n_train)
            rows.append(("B_simple", text, "purple"))
            if dominated:
                rows.append((None, "noise dominates", "purple"))
        if f.landscape is not None:     # the landscape's own temperature, not the ε-ball's
            rows += landscape_rows(f.landscape)
        elif f.temperature is not None:   # of the settings in force (Smith & Le 2017), its formula below it
            rows.append(("temperature", num(f.temperature), None))
            if f.stats is not None and f.stats.temperature_formula:
                rows.append((None, f"= {f.stats.temperature_formula}", "axis"))
        rows += accuracy_rows(f, narrow)
        rows += schedule_rows(f)
        return rows

    def build(self, width: int, height: int):
        narrow = width < 28
        rows = self.rows(self.history, narrow)
        label_w = 12 if not narrow else NARROW_LABEL
        out = []
        for label, value, color in rows:
            if label is None:          # the row above continued: a formula, what a value means
                out.append(text_strip([(" " * (2 if narrow else label_w), None), (value, color)], width))
            elif label:
                if narrow:
                    label = SHORT.get(label, label)
                out.append(text_strip([(f"{label[:label_w - 1]:<{label_w}}", "axis"), (value, color)], width))
            else:
                out.append(text_strip([(value, color or None)], width))
        if len(out) > height and height > 0:
            landscape = self.history.latest is not None and self.history.latest.landscape is not None
            wanted = KEEP + (LANDSCAPE_KEEP if landscape else ())
            labels = [r[0] for r in rows]
            for i in range(1, len(rows)):      # the landscape's formula goes with its temperature
                if labels[i] is None and labels[i - 1] in LANDSCAPE_KEEP and landscape:
                    labels[i] = labels[i - 1]
            keep = sorted((i for i, lab in enumerate(labels) if lab in wanted),
                          key=lambda i: (wanted.index(labels[i]), i))[:height]
            out = [out[i] for i in sorted(keep)]
        out = out[:height]
        room = height - len(out) - 2
        if room >= 2 and self.history.notices:
            out.append(Strip.blank(width))
            out.append(text_strip([("recent", "axis")], width))
            lines = []
            for kind, text in reversed(self.history.notices):
                wrapped = wrap(text, max(width - 2, 8))
                color = "red" if kind == "error" else None
                lines += [text_strip([("· " if i == 0 else "  ", "axis"), (ln, color)], width)
                          for i, ln in enumerate(wrapped)]
                if len(lines) >= room:
                    break
            out += lines[:room]
        return out

