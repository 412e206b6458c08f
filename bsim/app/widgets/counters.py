"""Counters: where the run stands (steps, epochs, samples) and the settings in force."""

from __future__ import annotations

from bsim.app.format import count, num, rate
from bsim.app.history import FrameBuffer
from textual.strip import Strip

from bsim.app.widgets.panel import Panel, text_strip, wrap


SHORT = {"batch size": "B", "samples/s": "smpl/s", "temperature": "temp", "momentum": "mom",
         "lr scaling": "scaling"}


def speed_text(speed) -> str:
    return "max" if speed is None else f"≤{speed:,} steps/s"


class CountersPanel(Panel):
    TITLE = "Counters"

    def __init__(self, history: FrameBuffer, frozen_rates: bool = False, **kwargs):
        super().__init__(history, **kwargs)
        self.frozen_rates = frozen_rates   # tests: no wall-clock numbers on screen

    def rows(self, history: FrameBuffer, narrow: bool = False) -> list[tuple[str, str, str | None]]:
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
            ("speed", speed_text(rs.speed if rs is not None else None), None),
            ("status", status, scol),
        ]
        if f.stats is not None and f.stats.noise_scale_smoothed is not None:   # over a window of steps (bsim.stats)
            rows.append(("B_simple", num(f.stats.noise_scale_smoothed), "purple"))
        if f.temperature is not None:   # lr (N/B - 1)/(1 - m) of the settings in force (Smith & Le 2017)
            rows.append(("temperature", num(f.temperature), None))
        return rows

    def build(self, width: int, height: int):
        narrow = width < 28
        rows = self.rows(self.history, narrow)
        label_w = 12 if not narrow else 8
        out = []
        for label, value, color in rows:
            if label:
                if narrow:
                    label = SHORT.get(label, label)
                out.append(text_strip([(f"{label[:label_w - 1]:<{label_w}}", "axis"), (value, color)], width))
            else:
                out.append(text_strip([(value, color or None)], width))
        if len(out) > height and height > 0:
            keep = [i for i, r in enumerate(rows) if r[0] in ("step", "", "batch size", "lr", "lr scaling", "sampling",
                                                              "status", "steps/s", "samples", "device")]
            out = [out[i] for i in keep]
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

