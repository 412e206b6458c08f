"""Variance across batches: E|g_B - G|^2 against B on log-log axes.

Theory (fixed parameters): E|g_B - G|^2 = c_B tr(Sigma), c_B = (N-B)/(B(N-1))
for B distinct examples (shuffle, iid) and 1/B with replacement: a line of
slope -1 that bends down to zero at B = N. The points are the measured mean of
|g_B - G|^2 over the frames shown at each batch size visited. tr(Sigma) is read
from the frame's grad_noise_theory at the current B (tr Sigma = theory / c_B).
"""

from __future__ import annotations

import math

import numpy as np

from bsim.app.format import num
from bsim.app.history import History, c_B
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.panel import Panel, text_strip


def trace_sigma(f) -> float | None:
    """tr(Sigma) at the step's parameters: the frame's own value, else grad_noise_theory / c_B."""
    for key in ("trace_sigma", "tr_sigma"):
        v = f.extra.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            return float(v)
    if f.grad_noise_theory is None or not f.batch_size:
        return None
    c = c_B(f.batch_size, f.n_train, f.sampling)
    return f.grad_noise_theory / c if c > 0 else None


class VariancePanel(Panel):
    TITLE = "Variance across batches"

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        if f is None:
            return self.message("starting…", width, height)
        pts = h.variance.points()
        tr = trace_sigma(f)
        if not pts and tr is None:
            why = f.extra.get("grad_noise_why") or (
                "not yet measured: |g_B - G|^2 appears once the run takes a step and the noise statistics "
                "measure it")
            return self.message(why, width, height)
        n = max(f.n_train, 2)
        rs = f.extra.get("runner")
        b_now = rs.next_batch_size if rs is not None and rs.next_batch_size else f.batch_size
        legend = [("━ c_B·trΣ ", "orange"), ("● measured ", "green"), ("┆B ", "blue")]
        if f.noise_scale is not None:
            legend.append(("┆B_simple", "purple"))
        out = [text_strip(legend, width)]
        bs = np.unique(np.round(np.logspace(0, math.log10(n), 96)).astype(int))
        cs = np.array([c_B(int(b), n, f.sampling) for b in bs])
        theory = tr * cs if tr is not None else None
        mb = np.array([p[0] for p in pts], dtype=float)
        mv = np.array([p[1] for p in pts], dtype=float)
        half = bs <= max(n // 2, 1)
        yr = data_range(theory[half] if theory is not None else None, mv, log=True, pad=0.08) or (1e-3, 1.0)
        chart = Chart(width, height - 2, xlim=(1.0, float(n)), ylim=yr, xlog=True, ylog=True)
        chart.xlabels = [(float(b), str(b)) for b in (8, 64, 512) if b < n / 2]
        chart.vline(float(b_now), "blue")
        if f.noise_scale is not None and f.noise_scale > 0:
            chart.vline(float(f.noise_scale), "purple")
        if theory is not None:
            chart.line(bs.astype(float), theory, "orange")
        for b, v in zip(mb, mv):
            chart.mark(b, v, "●", "green")
        out += chart.strips()
        here = next((p for p in pts if p[0] == b_now), None)
        readout = [(f"B={b_now} ", "blue")]
        if here is not None:
            readout += [("meas ", "axis"), (num(here[1]), "green"), (f" (n={here[2]})", "axis")]
        if tr is not None:
            t_here = tr * c_B(b_now, n, f.sampling)
            readout += [("  theory ", "axis"), (num(t_here), "orange")]
            if here is not None and t_here > 0:
                readout += [("  ratio ", "axis"), (f"{here[1] / t_here:.2f}", None)]
        else:
            readout += [("  theory: not yet measured", "axis")]
        out.append(text_strip(readout, width))
        return out[:height]
