"""Variance across batches: E|g_B - G|^2 against B on log-log axes.

Theory (fixed parameters): E|g_B - G|^2 = c_B tr(Sigma), c_B = (N-B)/(B(N-1))
for B distinct examples (shuffle, iid) and 1/B with replacement: a line of
slope -1 that bends down to zero at B = N. Everything drawn comes with the frame
(bsim.stats): the theory line (``frame.stats.variance_line``), the measured mean
of |g_B - G|^2 over the steps taken at each batch size visited under the sampling
in force, with its standard error (``frame.stats.variance_measured``), and
tr(Sigma) (``frame.trace_sigma``). A probe (v: K fresh batches at one step's
parameters, ``frame.probe``) is a red diamond with +-2 standard errors while it
is for the current B and sampling.
"""

from __future__ import annotations

import math

import numpy as np

from bsim.app.format import noise_scale_text, num, ratio_text
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.panel import Panel, fit, text_strip


def trace_sigma(f) -> float | None:
    """tr(Sigma) at the step's parameters, as the statistics computed it (None before a step)."""
    v = f.trace_sigma
    return float(v) if v is not None and math.isfinite(v) else None


def measured_points(f) -> list[tuple[int, float, int, float | None, float]]:
    """(B, mean |g_B - G|^2, steps, standard error, mean theory over the same steps) per batch size."""
    if f.stats is None:
        return []
    return [(p.batch_size, p.grad_noise_mean, p.steps, p.grad_noise_se, p.theory_mean)
            for p in f.stats.variance_measured if p.steps > 0]


def theory_line(f) -> tuple[np.ndarray, np.ndarray] | None:
    """(B, c_B tr(Sigma)) of the statistics' theory line, None before tr(Sigma) is known."""
    if f.stats is None or not f.stats.variance_line or trace_sigma(f) is None:
        return None
    line = np.asarray(f.stats.variance_line, dtype=float)
    return line[:, 0], line[:, 1]


def current_probe(f, b_now: int):
    """The frame's probe when it was taken at the batch size and sampling in force, else None."""
    pr = f.probe
    if pr is None or pr.batch_size != b_now or pr.sampling != f.sampling:
        return None
    return pr if math.isfinite(pr.grad_noise_mean) and pr.grad_noise_mean > 0 else None


class VariancePanel(Panel):
    """The variance of the batch gradient across batches against B, log-log: the statistics' theory line
    c_B tr(Σ), the measured point at each batch size visited, the probe, the B in force and B_simple.

    Owns: nothing but its drawing. Reads: frame.stats (the line, the points, the smoothed B_simple) and
    frame.probe; recomputes no c_B.
    """

    TITLE = "Variance across batches"
    SHORT_TITLE = "Variance vs B"

    def build(self, width: int, height: int):
        h = self.history
        f = h.latest
        self._title(self.TITLE if width >= len(self.TITLE) + 6 else self.SHORT_TITLE)
        if f is None:
            return self.message("starting…", width, height)
        pts = measured_points(f)
        tr = trace_sigma(f)
        if not pts and tr is None:
            return self.message("not yet measured: |g_B - G|^2 and its theory c_B tr(Σ) appear once the run "
                                "takes a step (n steps once while paused)", width, height)
        n = max(f.n_train, 2)
        b_now = f.next_batch_size
        b_simple = f.stats.noise_scale_smoothed if f.stats is not None else None   # the counters' value
        probe = current_probe(f, b_now)
        legends = []
        for theory_name, meas_name in (("c_B·trΣ", "measured"), ("c_B·trΣ", "meas")):
            legend = [(0, [(f"━ {theory_name} ", "orange")]), (0, [(f"● {meas_name} ", "green")]),
                      (0, [("┆B ", "blue")])]
            if b_simple is not None:
                legend.append((2, [("┆B_simple", "purple")]))
            if probe is not None:
                legend.append((1, [(" ◆ probe", "red")]))
            legends.append(legend)
        out = [text_strip(fit(legends, width), width)]
        line = theory_line(f)
        bs, theory = line if line is not None else (np.zeros(0), None)
        mb = np.array([p[0] for p in pts], dtype=float)
        mv = np.array([p[1] for p in pts], dtype=float)
        pv = mv if probe is None else np.append(mv, probe.grad_noise_mean)
        half = bs <= max(n // 2, 1)
        yr = data_range(theory[half] if theory is not None else None, pv, log=True, pad=0.08) or (1e-3, 1.0)
        chart = Chart(width, height - 3, xlim=(1.0, float(n)), ylim=yr, xlog=True, ylog=True)
        chart.xlabels = [(float(b), str(b)) for b in (8, 64, 512) if b < n / 2]
        chart.vline(float(b_now), "blue")
        if b_simple is not None and 0 < b_simple <= n:   # past N: "> N" in the readout, no line
            chart.vline(float(b_simple), "purple")
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
        chart.label(0, -1, "|g_B-G|², log")
        chart.label(chart.canvas.h - 1, 0, "batch size B →")
        out += chart.strips()
        here = next((p for p in pts if p[0] == b_now), None)
        t_here = here[4] if here is not None else (
            f.stats.variance_theory(b_now) if tr is not None and f.stats.variance_theory is not None else None)
        label = f.stats.trace_sigma_label if f.stats is not None else ""
        out.append(text_strip(fit(self.readouts(b_now, here, t_here, label.startswith("two-batch")), width), width))
        notes = [self.note(f, tr, probe, b_simple, here, label, window, two_batch)
                 for two_batch in ("  (two-batch estimate)", "  (two-batch)") for window in (True, False)]
        out.append(text_strip(fit(notes, width), width))
        return out[:height]

    @staticmethod
    def note(f, tr, probe, b_simple, here, label: str, window: bool, two_batch: str) -> list:
        """The second readout line as groups: tr(Σ), the probe, B_simple (and its window), the steps measured."""
        note = [(0, [("trΣ ", "axis"), (num(tr), None)])]
        if tr is not None and tr <= 0 and label.startswith("two-batch"):   # an estimate, a difference of two noisy norms
            note[0][1].append((" est. ≤ 0: noise", "red"))
        if probe is not None:
            note.append((1, [(f"  probe@{probe.step} ", "axis"),
                             (f"{num(probe.grad_noise_mean)}±{num(probe.grad_noise_se)}", "red")]))
        if b_simple is not None:
            text, dominated = noise_scale_text(b_simple, f.n_train)
            note.append((1, [("  B_simple ", "axis"), (text, "purple")]))
            if dominated:                 # what "> N" means, or what the value is a mean of: the first to go
                note.append((3, [(" noise dominates", "purple")]))
            elif window:
                note.append((3, [(f" mean of {f.stats.noise_scale_window} steps", "axis")]))
        if here is not None:
            note.append((2, [(f"  n={num(here[2])}", "axis")]))
        if label.startswith("two-batch"):   # what tr(Σ) is: kept before the count
            note.append((1, [(two_batch, "axis")]))
        return note

    @staticmethod
    def readouts(b_now: int, here, t_here: float | None, estimate: bool = False) -> list:
        """The readout at the current B, worded long and short (the short one names the legend's marks), each
        with the ratio's "± se" spaced, then without the spaces. ``estimate``: tr(Σ) is the two-batch estimate, which
        can fall to <= 0 (said so in red, no ratio)."""
        out = []
        for (meas_name, meas_color, theory_name, theory_color), sep in (
                (names, sep) for names in (("meas ", "axis", " theory ", "axis"), ("● ", "green", " ━ ", "orange"))
                for sep in (" ± ", "±")):
            groups = [(0, [(f"B={b_now} ", "blue")])]
            if here is not None:
                groups.append((0, [(meas_name, meas_color), (num(here[1]), "green")]))
            if t_here is not None and t_here <= 0 and estimate:      # c_B times a two-batch estimate of tr(Σ) that fell to <= 0
                groups.append((0, [(theory_name, theory_color), (num(t_here), "red"), (" est.", "axis")]))
            elif t_here is not None:
                groups.append((0, [(theory_name, theory_color),
                                   (num(t_here), "orange")]))
                if here is not None and t_here > 0:      # here: (B, mean, steps, se against t_here, t_here)
                    groups.append((1, [(ratio_text(here[1], here[3], t_here).replace(" ± ", sep), None)]))
            else:
                groups.append((1, [(" theory: not yet measured", "axis")]))
            out.append(groups)
        return out
