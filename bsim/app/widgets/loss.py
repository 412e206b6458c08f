"""Loss: the batch loss of each shown step, the train and test loss, a mark where B changed."""

from __future__ import annotations

import numpy as np

from bsim.app.format import num
from bsim.app.history import FrameBuffer
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.panel import Panel, text_strip


def thin(a: np.ndarray, n: int) -> np.ndarray:
    """At most about n rows, evenly strided, always keeping the last row."""
    if len(a) <= n:
        return a
    idx = np.unique(np.concatenate((np.linspace(0, len(a) - 1, n).astype(int), [len(a) - 1])))
    return a[idx]


class LossPanel(Panel):
    TITLE = "Loss"

    def __init__(self, history: FrameBuffer, **kwargs):
        super().__init__(history, **kwargs)
        self.log_scale = True

    def cache_key(self, history: FrameBuffer):
        return (history.version, self.log_scale)

    def toggle_log(self) -> bool:
        self.log_scale = not self.log_scale
        self.show(self.history)
        return self.log_scale

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        data = h.trace.array()
        scale = "log" if self.log_scale else "linear"
        if f is None or len(data) == 0:
            return self.message("no steps yet: the loss appears once the run takes its first step", width, height)
        legend = [("● batch ", "grey"), ("━ train ", "blue")]
        if f.test_loss is not None:
            legend.append(("━ test ", "orange"))
        legend.append((f"  {scale} (y)", "axis"))
        out = [text_strip(legend, width)]
        rows = thin(data, 2 * width)
        step, batch, train, test = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        xr = (float(step[0]), float(max(step[-1], step[0] + 1)))
        yr = data_range(batch, train, test, log=self.log_scale) or (1e-3, 1.0)
        chart = Chart(width, height - 2, xlim=xr, ylim=yr, ylog=self.log_scale)
        for s, old, new in h.b_changes[1:]:
            if s >= xr[0]:
                chart.vline(s, "purple")
                chart.xlabels.append((s, f"B{new}"))
        chart.points(step, batch, "grey")
        chart.line(step, train, "blue")
        if np.isfinite(test).any():
            chart.line(step, test, "orange")
        out += chart.strips()
        readout = [("batch ", "axis"), (num(f.batch_loss), None), ("  train ", "axis"), (num(f.train_loss), "blue")]
        if f.test_loss is not None:
            readout += [("  test ", "axis"), (num(f.test_loss), "orange")]
        out.append(text_strip(readout, width))
        return out[:height]
