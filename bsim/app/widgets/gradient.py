"""Batch gradient: |g_B| against the full gradient |G| and cos(g_B, G), step by step.

Far from the optimum g_B points along G (cos near 1); near it |G| -> 0 while
|g_B| stays at the noise level, about sqrt(c_B tr(Sigma)), and cos falls to ~0.
"""

from __future__ import annotations

import numpy as np

from bsim.app.format import num
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.loss import thin
from bsim.app.widgets.panel import Panel, fit, text_strip


class GradientPanel(Panel):
    """|g_B| against |G| over the recent steps, and their cosine in a sub-plot with its own title.

    Owns: nothing but its drawing. Reads: grad_norm, full_grad_norm and cos_to_full of the frames in the
    FrameBuffer (the statistics measured them at each step's own parameters).
    """

    TITLE = "Batch gradient"

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        data = h.trace.array()
        if f is None or len(data) == 0 or f.grad_norm is None:
            return self.message("no step yet: the batch gradient of each step appears once the run moves "
                                "(n takes one step while paused)", width, height)
        legend = [("● |g_B| batch ", "orange"), ("━ |G| full", "blue")]
        out = [text_strip(legend, width)]
        rows = thin(data, 2 * width)
        step, g, G, cos = rows[:, 0], rows[:, 4], rows[:, 5], rows[:, 6]
        xr = (float(step[0]), float(max(step[-1], step[0] + 1)))
        avail = height - 2
        h_top = max(avail - max(avail // 3, 3), 3)
        h_cos = avail - h_top
        yr = data_range(g, G, log=True) or (1e-3, 1.0)
        top = Chart(width, h_top, xlim=xr, ylim=yr, ylog=True, xaxis=False, ylabel_width=None)
        if top.ylw < 4:
            top = Chart(width, h_top, xlim=xr, ylim=yr, ylog=True, xaxis=False, ylabel_width=4)
        top.points(step, g, "orange")
        top.line(step, G, "blue")
        top.label(0, 0, "norm, log")
        out += top.strips()
        mean, steps = (f.stats.cos_to_full_mean, f.stats.cos_to_full_window) if f.stats is not None else (None, 0)
        titled = h_cos >= 3          # the cosine sub-plot gets a title line, which carries its value and mean
        if titled:
            out.append(text_strip(fit(self.cos_readout(f.cos_to_full, mean, steps, " " * top.ylw + "cos(g_B, G) "),
                                      width), width))
            h_cos -= 1
        if h_cos >= 2:
            bottom = Chart(width, h_cos, xlim=xr, ylim=(-1.0, 1.0), xaxis=h_cos >= 3, ylabel_width=top.ylw)
            bottom.hline(0.0, "grey")
            if mean is not None:
                bottom.hline(mean, "purple")
            ok = np.isfinite(cos)
            bottom.line(step[ok], cos[ok], "green")
            bottom.label(0, 0, "cos(g_B, G)")
            out += bottom.strips()
        readout = [(0, [("|g_B| ", "axis"), (num(f.grad_norm), "orange")]),
                   (0, [("  |G| ", "axis"), (num(f.full_grad_norm), "blue")])]
        if not titled:
            readout += [(rank + 1, parts) for rank, parts in self.cos_readout(f.cos_to_full, mean, steps, "  cos ")[0]]
        out.append(text_strip(fit([readout], width), width))
        return out[:height]

    @staticmethod
    def cos_readout(cos, mean, steps: int, head: str) -> list:
        """cos(g_B, G) of the step, its running mean (the purple line) and the steps it is over, as groups."""
        groups = [(0, [(head, "green"), (num(cos, 2), "green")])]
        if mean is not None:
            groups.append((1, [("  mean ", "purple"), (num(mean, 2), "purple")]))
            groups.append((2, [(f" of {steps} steps", "axis")]))
        return [groups]
