"""Variance across batches: E|g_B - G|^2 against B on log-log axes.

Theory (fixed parameters): E|g_B - G|^2 = c_B tr(Sigma), c_B = (N-B)/(B(N-1))
for B distinct examples (shuffle, iid) and 1/B with replacement: a line of
slope -1 that bends down to zero at B = N. The points are the measured mean of
|g_B - G|^2 over the frames shown at each batch size visited. tr(Sigma) is read
from the frame's grad_noise_theory at the current B (tr Sigma = theory / c_B).
A probe (v: K fresh batches at one step's parameters, frame.extra["probe"]) is
a red diamond with +-2 standard errors while it is for the current B and sampling.
"""

from __future__ import annotations

import math

import numpy as np

from bsim.app.format import num
from bsim.app.history import History, c_B
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.panel import Panel, text_strip


def trace_sigma(f) -> float | None:
    """tr(Sigma) at the step's parameters: the statistics' value, else grad_noise_theory / c_B."""
    v = getattr(f, "trace_sigma", None)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    if f.grad_noise_theory is None or not f.batch_size:
        return None
    c = c_B(f.batch_size, f.n_train, f.sampling)
    return f.grad_noise_theory / c if c > 0 else None


def measured_points(f, history: History) -> list[tuple[int, float, int, float | None, float | None]]:
    """(B, mean |g_B - G|^2, steps, standard error, mean theory over the same steps) per batch size.

    From the statistics (every step at each B under the sampling in force) when
    the frame has them, else from the frames this panel was shown.
    """
    stats = f.extra.get("stats")
    if stats is not None and getattr(stats, "variance_measured", None) is not None:
        return [(p.batch_size, p.grad_noise_mean, p.steps, p.grad_noise_se, p.theory_mean)
                for p in stats.variance_measured if p.steps > 0]
    return [(b, mean, n, None, None) for b, mean, n in history.variance.points()]


def current_probe(f, b_now: int):
    """The frame's probe when it was taken at the batch size and sampling in force, else None."""
    pr = f.extra.get("probe")
    if pr is None or pr.batch_size != b_now or pr.sampling != f.sampling:
        return None
    return pr if math.isfinite(pr.grad_noise_mean) and pr.grad_noise_mean > 0 else None


class VariancePanel(Panel):
    TITLE = "Variance across batches"

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        if f is None:
            return self.message("starting…", width, height)
        pts = measured_points(f, h)
        tr = trace_sigma(f)
        if not pts and tr is None:
            return self.message("not yet measured: |g_B - G|^2 and its theory c_B tr(Σ) appear once the run "
                                "takes a step (n steps once while paused)", width, height)
        n = max(f.n_train, 2)
        b_now = f.next_batch_size
        legend = [("━ c_B·trΣ ", "orange"), ("● measured ", "green"), ("┆B ", "blue")]
        if f.noise_scale is not None:
            legend.append(("┆B_simple", "purple"))
        probe = current_probe(f, b_now)
        if probe is not None:
            legend.append((" ◆ probe", "red"))
        out = [text_strip(legend, width)]
        bs = np.unique(np.round(np.logspace(0, math.log10(n), 96)).astype(int))
        cs = np.array([c_B(int(b), n, f.sampling) for b in bs])
        theory = tr * cs if tr is not None else None
        mb = np.array([p[0] for p in pts], dtype=float)
        mv = np.array([p[1] for p in pts], dtype=float)
        pv = mv if probe is None else np.append(mv, probe.grad_noise_mean)
        half = bs <= max(n // 2, 1)
        yr = data_range(theory[half] if theory is not None else None, pv, log=True, pad=0.08) or (1e-3, 1.0)
        chart = Chart(width, height - 3, xlim=(1.0, float(n)), ylim=yr, xlog=True, ylog=True)
        chart.xlabels = [(float(b), str(b)) for b in (8, 64, 512) if b < n / 2]
        chart.vline(float(b_now), "blue")
        if f.noise_scale is not None and f.noise_scale > 0:
            chart.vline(float(f.noise_scale), "purple")
        if theory is not None:
            chart.line(bs.astype(float), theory, "orange")
        for b, v, _n, se, _t in pts:
            if se is not None and se > 0:   # +- 2 standard errors
                chart.line([b, b], [max(v - 2 * se, v * 1e-3), v + 2 * se], "green")
        for b, v in zip(mb, mv):
            chart.mark(b, v, "●", "green")
        if probe is not None:   # +- 2 standard errors, drawn over the green point at the same B
            v, se = probe.grad_noise_mean, probe.grad_noise_se
            chart.line([probe.batch_size] * 2, [max(v - 2 * se, v * 1e-3), v + 2 * se], "red")
            chart.mark(probe.batch_size, v, "◆", "red")
        out += chart.strips()
        here = next((p for p in pts if p[0] == b_now), None)
        readout = [(f"B={b_now} ", "blue")]
        if here is not None:
            readout += [("meas ", "axis"), (num(here[1]), "green")]
        t_here = here[4] if here is not None and here[4] is not None else (
            tr * c_B(b_now, n, f.sampling) if tr is not None else None)
        if t_here is not None:
            readout += [(" theory ", "axis"), (num(t_here), "orange")]
            if here is not None and t_here > 0:
                readout += [(" ×", "axis"), (f"{here[1] / t_here:.2f}", None)]
        else:
            readout += [(" theory: not yet measured", "axis")]
        out.append(text_strip(readout, width))
        note = [("trΣ ", "axis"), (num(tr), None)]
        if probe is not None:   # before the rest: a narrow panel cuts the end of the line
            note += [(f"  probe@{probe.step} ", "axis"),
                     (f"{num(probe.grad_noise_mean)}±{num(probe.grad_noise_se)}", "red")]
        if f.noise_scale is not None:
            note += [("  B_simple ", "axis"), (num(f.noise_scale), "purple")]
        if here is not None:
            note += [(f"  n={num(here[2])}", "axis")]
        stats = f.extra.get("stats")
        label = getattr(stats, "trace_sigma_label", "") if stats is not None else ""
        if label.startswith("two-batch"):
            note += [("  (two-batch estimate)", "axis")]
        out.append(text_strip(note, width))
        return out[:height]
