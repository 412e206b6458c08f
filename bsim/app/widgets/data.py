"""The data and the model (d swaps it with the batch gradient panel).

What it draws comes with the frame (``frame.runner.data``, a ``bsim.dataview.DataView``
the runner computes while this panel is shown); theta and theta* come with the frame.
- linreg: the points (y against x_1) and the fit at theta and at theta* (other features at their mean);
- logreg: the points by class and the decision boundary theta . x = 0 at theta and theta*;
- lstm: a few test sequences, and the next value: truth against the prediction at theta; the character
  LSTM the text it writes at theta (``bsim.app.widgets.data_text``);
- softmax: the first test images (the digits, in shaded blocks) with the class and the guess at theta,
  and the accuracy per class.
"""

from __future__ import annotations

import numpy as np

from bsim.app.format import num
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.data_text import build_text
from bsim.app.widgets.panel import Panel, text_strip


class DataPanel(Panel):
    """The data and the model (d, in place of the batch gradient): linreg's points with the fits at θ and
    θ*, logreg's points by class with the decision boundary, the LSTM's test sequences against its prediction.

    Owns: nothing but its drawing. Reads: the runner's DataView (RunnerState.data), sent only while shown.
    """

    TITLE = "Data and model"

    def build(self, width: int, height: int):
        f = self.history.latest
        view = f.runner.data if f is not None and f.runner is not None else None
        if view is None:
            return self.message("asking the runner for the data…", width, height)
        if view.note:
            return self.message(view.note, width, height)
        if view.kind == "lstm":
            return self.build_sequences(view, width, height)
        if view.kind == "logreg":
            return self.build_classes(view, f, width, height)
        if view.kind == "softmax":
            return build_softmax(view, width, height)
        if view.kind == "text":
            return build_text(view, width, height)
        return self.build_fit(view, f, width, height)

    def build_fit(self, view, f, width: int, height: int):
        x, y = view.x, view.y
        out = [text_strip([("· data ", "grey"), ("━ fit at θ ", "blue"), ("┄ at θ* ", "orange")], width)]
        xr = data_range(x) or (-1.0, 1.0)
        grid = np.linspace(xr[0], xr[1], 64)

        def fit(theta):
            theta = np.asarray(theta, dtype=float)
            rest = float(view.x_mean[1:] @ theta[1:]) if len(theta) > 1 else 0.0
            return theta[0] * grid + rest

        lines = [fit(f.theta)] + ([fit(f.theta_star)] if f.theta_star is not None else [])
        yr = data_range(y, *lines) or (-1.0, 1.0)
        chart = Chart(width, height - 2, xlim=xr, ylim=yr)
        chart.points(x, y, "grey")
        if f.theta_star is not None:
            star = lines[1]
            keep = (np.arange(grid.size) // 3) % 2 == 0
            chart.points(grid[keep], star[keep], "orange")
        chart.line(grid, lines[0], "blue")
        chart.label(0, 0, "y")
        chart.label(chart.canvas.h - 1, -1, "x₁" + (" (x₂ at its mean)" if len(f.theta) > 1 else ""))
        out += chart.strips()
        slope = [("slope θ₁ ", "axis"), (num(f.theta[0]), "blue")]
        if f.theta_star is not None:
            slope += [("  θ₁* ", "axis"), (num(f.theta_star[0]), "orange")]
        out.append(text_strip(slope, width))
        return out[:height]

    def build_classes(self, view, f, width: int, height: int):
        x, y = view.x, view.y
        out = [text_strip([("· class 0 ", "blue"), ("· class 1 ", "red"), ("━ boundary θ ", "white"),
                           ("┄ θ*", "orange")], width)]
        xr = data_range(x[:, 0]) or (-1.0, 1.0)
        yr = data_range(x[:, 1]) or (-1.0, 1.0)
        chart = Chart(width, height - 2, xlim=xr, ylim=yr)
        chart.points(x[y < 0.5, 0], x[y < 0.5, 1], "blue")
        chart.points(x[y >= 0.5, 0], x[y >= 0.5, 1], "red")
        grid = np.linspace(xr[0], xr[1], 96)
        for theta, color, dashed in ((f.theta_star, "orange", True), (f.theta, "white", False)):
            if theta is None or abs(theta[1]) < 1e-12:
                continue
            line = -theta[0] * grid / theta[1]        # theta . x = 0
            ok = (line >= yr[0]) & (line <= yr[1])
            if dashed:
                ok &= (np.arange(grid.size) // 3) % 2 == 0
                chart.points(grid[ok], line[ok], color)
            else:
                chart.line(grid[ok], line[ok], color)
        chart.label(0, 0, "x₂")
        chart.label(chart.canvas.h - 1, -1, "x₁")
        out += chart.strips()
        out.append(text_strip([("boundary θ·x = 0", "axis")], width))
        return out[:height]

    def build_sequences(self, view, width: int, height: int):
        seq, truth, pred = view.sequences, view.truth, view.predicted
        k, T = seq.shape
        out = [text_strip([("━ test inputs ", "blue"), ("● next: truth ", "green"), ("◆ prediction", "orange")],
                          width)]
        yr = data_range(seq, truth, pred) or (-1.0, 1.0)
        chart = Chart(width, height - 2, xlim=(0.0, float(T)), ylim=yr)
        t = np.arange(T, dtype=float)
        for i in range(k):
            chart.line(t, seq[i], "blue")
            chart.mark(float(T), float(truth[i]), "●", "green")
            chart.mark(float(T) - 0.5, float(pred[i]), "◆", "orange")
        chart.label(0, 0, "value")
        chart.label(chart.canvas.h - 1, -1, "time step")
        out += chart.strips()
        err = float(np.sqrt(np.mean((pred - truth) ** 2)))
        out.append(text_strip([(f"{k} test sequences · rms error ", "axis"), (num(err), "orange")], width))
        return out[:height]


#: pixel shades, from empty to full (a pixel's value over the image's largest)
SHADES = " ░▒▓█"


def image_rows(image: np.ndarray, tall: bool) -> list[str]:
    """An s x s image as text: two cells a pixel in s rows (``tall``), else one cell per pixel pair of rows
    (half blocks: a pixel is on above half the image's largest value) in s/2 rows."""
    top = float(image.max()) or 1.0
    if tall:
        levels = np.clip(np.rint(image / top * (len(SHADES) - 1)), 0, len(SHADES) - 1).astype(int)
        return ["".join(SHADES[v] * 2 for v in row) for row in levels]
    on = image > 0.5 * top
    if on.shape[0] % 2:
        on = np.vstack([on, np.zeros((1, on.shape[1]), dtype=bool)])
    halves = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
    return ["".join(halves[(bool(a), bool(b))] for a, b in zip(on[r], on[r + 1])) for r in range(0, on.shape[0], 2)]


def build_softmax(view, width: int, height: int):
    """The test images with class and guess (green right, red wrong), then the accuracy per class."""
    ex = view.extra
    out = [text_strip([(f"{ex['split']} accuracy at θ ", "axis"), (f"{ex['accuracy']:.3f}", "blue"),
                       ("  (measured)", "axis")], width)]
    acc_lines, line, used = [], [("per class ", "axis")], 10
    for k, a in enumerate(ex["class_acc"]):
        part = [(f"{k}:", "axis"), ("  - " if a is None else f"{a:.2f} ", "red" if a is not None and a < 0.9 else "blue")]
        n = len(part[0][0]) + len(part[1][0])
        if used + n > width and used > 10:
            acc_lines.append(line)
            line, used = [(" " * 10, None)], 10
        line, used = line + part, used + n
    acc_lines.append(line)
    images = ex.get("images")
    if images is not None and height >= 7 + len(acc_lines):
        side = images.shape[1]
        tall = height >= side + 3 + len(acc_lines)
        cell = 2 * side if tall else side
        k = max(1, min(len(images), (width + 1) // (cell + 1)))
        pics = [image_rows(images[i], tall) for i in range(k)]
        for r in range(len(pics[0])):
            out.append(text_strip([(" ".join(p[r] for p in pics), "white")], width))
        labels = []
        for i in range(k):
            truth, guess = int(view.truth[i]), int(view.predicted[i])
            word = f"{truth}→{guess}" + ("✓" if truth == guess else "✗")
            labels.append((word.ljust(cell + 1)[:cell + 1], "green" if truth == guess else "red"))
        out.append(text_strip(labels, width))
        out.append(text_strip([("class → guess at θ", "axis")], width))
    return (out + [text_strip(parts, width) for parts in acc_lines])[:height]
