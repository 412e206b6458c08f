"""Readouts a new teacher misread (issue 18): B_simple past N, the temperature's formula beside it, and a
diverging run, which every panel shows as a labelled notice, never an exception's text."""

from __future__ import annotations

import pytest

from bsim.app.history import FrameBuffer
from bsim.app.widgets.counters import CountersPanel
from bsim.app.widgets.panel import Panel, cannot_draw
from bsim.frame import Frame
from bsim.scenario import find_scenario
from bsim.simulation import Simulation
from support import linreg_100
from support.app import drive, panel_text


def counter_rows(sampling: str = "shuffle", steps: int = 1000):
    sc = linreg_100(3, 10, sampling)
    sim = Simulation(sc)
    for _ in range(steps):
        sim.step()
    f = sim.frame(timing=False)
    history = FrameBuffer()
    history.add(f)
    return f, CountersPanel(history).rows(history)


def test_b_simple_past_n_reads_noise_dominates():
    f, rows = counter_rows()
    assert f.stats.noise_scale_smoothed > 100        # near theta*: |G|^2 -> 0 (about 1.6k here)
    i = next(i for i, r in enumerate(rows) if r[0] == "B_simple")
    assert rows[i][1] == "> N = 100" and rows[i + 1][:2] == (None, "noise dominates")
    assert f.noise_scale is not None and f.noise_scale != f.stats.noise_scale_smoothed   # the CSV's stays raw


def test_temperature_shows_its_formula_for_the_sampling_in_force():
    for sampling, formula, value in (("shuffle", "= lr(N/B-1)/(1-m)", 0.05 * (100 / 10 - 1)),
                                     ("replacement", "= lr N/(B(1-m))", 0.05 * 100 / 10)):
        f, rows = counter_rows(sampling, steps=3)
        i = next(i for i, r in enumerate(rows) if r[0] == "temperature")
        assert abs(f.temperature - value) < 1e-12
        assert rows[i + 1][:2] == (None, formula)


class Broken(Panel):
    def build(self, width, height):
        return [1.0e200 ** 2]       # OverflowError, as a diverging loss's axis once raised


def test_a_panel_that_cannot_draw_a_diverging_frame_says_so():
    diverging = Frame(step=1120, lr=3.2, status="running", train_loss=1e255)
    diverged = Frame(step=1400, lr=3.2, status="diverged")
    assert cannot_draw(diverging, OverflowError(34, "Numerical result out of range")) == \
        "diverging at lr 3.2: the numbers are too large to draw. Press - to lower the lr, r to reset"
    assert cannot_draw(diverged, ValueError("nan")).startswith("diverged at step 1,400: nothing finite to draw")
    assert cannot_draw(None, KeyError("x")) == "cannot draw this frame (KeyError)"
    history = FrameBuffer()
    history.add(diverging)
    text = "".join(s.text for s in Broken(history)._built(40, 6))
    assert "diverging at lr 3.2" in text and "Numerical" not in text and "Error" not in text


async def lr_up_to_divergence(d):
    for _ in range(10):
        await d.steps(50)
    for _ in range(6):                  # lr 0.05 -> 3.2
        await d.press("plus")
    seen = []
    for _ in range(60):
        await d.steps(25)
        texts = {p.id: panel_text(d.app, p.id) for p in d.app.query(Panel) if p.id and p.display}
        seen.append((d.app.history.latest.status, d.app.history.latest.train_loss, texts))
        if d.app.history.latest.status == "diverged":
            break
    return seen


@pytest.mark.slow      # about 1,000 steps drawn 25 at a time
def test_every_panel_shows_a_diverging_run_without_exception_text(tmp_path):
    _app, seen = drive(tmp_path, lr_up_to_divergence, sc=find_scenario("default"))
    assert seen[-1][0] == "diverged"
    assert max(loss for _s, loss, _t in seen[:-1]) > 1e280    # the axis of such a loss once overflowed
    for status, _loss, texts in seen:
        assert len(texts) >= 5
        for pid, text in texts.items():
            assert "Error" not in text and "Numeric" not in text and "cannot draw:" not in text, (status, pid, text)


def test_the_help_says_what_the_screen_shows():
    from bsim.app.screens import help_text
    text = " ".join(help_text().plain.split())
    for sampling in ("shuffle", "replacement"):             # the formula under the temperature, word for word
        _f, rows = counter_rows(sampling, steps=3)
        formula = next(v for label, v, _c in rows if label is None and v.startswith("= "))[2:]
        assert formula in text
    assert "'> N' past N" in text
    assert "spread is one run's iterates around their running average over a window" in text   # the LSTM's
    assert "across the chains around their mean at one step" in text                              # two spreads


def test_the_loss_chart_s_top_notes_never_run_into_its_title():
    import re

    from bsim.app.widgets.canvas import Chart
    from bsim.app.widgets.loss import LossPanel
    # the plot is width - 4 cells (a y label column and the axis); the title takes 13 and a space
    for width, expect in ((18, ""), (20, "▲5"), (24, "+3B ▲5"), (40, "+3B ▲5 off chart"),
                          (60, "+3 B changes ▲5 off chart")):
        chart = Chart(width, 5, xlim=(0.0, 1.0), ylim=(0.1, 1.0), ylog=True)
        title = "loss, log (y)"
        chart.label(0, 0, title)
        LossPanel.top_right(chart, len(title), merged=3, above=5)
        top = "".join(seg.text for seg in chart.strips()[0])
        after = top.split(title, 1)[1]
        assert re.sub(r"\s+", " ", after).strip() == expect, (width, top)
