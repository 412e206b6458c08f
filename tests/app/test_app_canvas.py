"""The chart renderer and the view's memory: positions, scales, thinning, contours."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bsim.app.format import num
from bsim.app.history import FrameBuffer, Trace
from bsim.app.widgets.ball import contour_mask
from bsim.app.widgets.canvas import Canvas, Chart, Scale, data_range
from bsim.frame import Frame


def dots_of(canvas: Canvas) -> set[tuple[int, int]]:
    """Decode the braille cells back into the set of (x, y) dots that are on."""
    bits = {0x01: (0, 0), 0x02: (0, 1), 0x04: (0, 2), 0x40: (0, 3), 0x08: (1, 0), 0x10: (1, 1), 0x20: (1, 2), 0x80: (1, 3)}
    out = set()
    for r in range(canvas.h):
        for c in range(canvas.w):
            for bit, (dx, dy) in bits.items():
                if canvas.bits[r, c] & bit:
                    out.add((2 * c + dx, 4 * r + dy))
    return out


def test_dots_land_in_the_right_braille_cell_and_bit():
    cv = Canvas(3, 2)                     # 6 x 8 dots
    cv.dots([0, 5, 3, 99, -1], [0, 7, 2, 0, 0], "blue")
    assert dots_of(cv) == {(0, 0), (5, 7), (3, 2)}   # the two outside are dropped
    text = "".join(seg.text for row in cv.rows() for seg in row)
    assert chr(0x2801) in text            # the dot at the top left of the first cell


def test_a_line_covers_every_dot_column_between_its_ends():
    cv = Canvas(10, 3)
    cv.segments([0], [0], [19], [11], "blue")
    d = dots_of(cv)
    assert (0, 0) in d and (19, 11) in d
    assert {x for x, _ in d} == set(range(20))
    # and stays on the straight line y = 11 x / 19 (to the nearest dot)
    assert all(abs(y - 11 * x / 19) <= 0.5 + 1e-9 for x, y in d)


def test_scales_linear_and_log():
    s = Scale(0.0, 10.0, 11)
    assert s(5.0) == pytest.approx(5.0) and s.inverse(10) == pytest.approx(10.0)
    lg = Scale(1.0, 1000.0, 4, log=True)
    assert list(lg([1, 10, 100, 1000])) == pytest.approx([0, 1, 2, 3])
    assert math.isnan(float(lg(0.0))) and math.isnan(float(lg(-5.0)))   # a log axis cannot show them
    flipped = Scale(0.0, 1.0, 5, flip=True)                            # rows count from the top
    assert flipped(1.0) == pytest.approx(0.0) and flipped(0.0) == pytest.approx(4.0)


def test_data_range_pads_and_skips_what_a_log_scale_cannot_show():
    lo, hi = data_range([1.0, 3.0], [float("nan"), 2.0])
    assert lo < 1.0 and hi > 3.0 and hi - lo == pytest.approx(2.0 * 1.1)
    lo, hi = data_range([0.0, -1.0, 10.0, 1000.0], log=True)
    assert 1.0 < 10.0 / lo < 2.0 and 1.0 < hi / 1000.0 < 2.0
    assert data_range([float("nan")]) is None


def test_chart_puts_a_point_where_its_axes_say():
    ch = Chart(30, 10, xlim=(1.0, 1024.0), ylim=(1e-4, 1.0), xlog=True, ylog=True, ylabel_width=6)
    ch.mark(32.0, 1e-2, "●", "green")
    (row, col), = [k for k in ch.canvas.text]
    # B = 32 is half way across a log axis from 1 to 1024; 1e-2 half way down from 1 to 1e-4
    assert col == round(0.5 * (ch.canvas.dots_w - 1)) // 2
    assert row == round(0.5 * (ch.canvas.dots_h - 1)) // 4
    lines = [s.text for s in ch.strips()]
    assert len(lines) == 10 and all(len(t) == 30 for t in lines)
    assert lines[0].startswith("     1┤") and lines[-2].startswith("1.0e-4┤")


def test_number_format():
    assert [num(v) for v in (None, 0, 0.0123, 12.34, 1234, 12345, 2.5e6, 1.5e-5, float("nan"))] == [
        "—", "0", "0.0123", "12.3", "1234", "12.3k", "2.5M", "1.50e-5", "nan"]  # 3 significant digits


def test_trace_thins_by_two_and_keeps_the_whole_run():
    t = Trace(columns=("step",), cap=8)
    for i in range(100):
        t.append((float(i),))
    a = t.array()[:, 0]
    assert len(a) < 8 and a[0] == 0.0
    steps = np.diff(a)
    assert np.all(steps == steps[0])      # evenly spaced over the whole run
    assert a[-1] >= 100 - steps[0]


def test_contours_are_ellipses_around_the_minimum():
    y, x = np.mgrid[-1:1:81j, -1:1:81j]
    loss = 1.0 + x ** 2 + 4 * y ** 2
    m = contour_mask(loss)
    assert not m[40, 40] and m.any()
    # every contour dot sits where the level changes: the same level set on both sides by symmetry
    ys, xs = np.nonzero(m)
    assert np.allclose(sorted(loss[ys, xs]), sorted(loss[80 - ys, 80 - xs]), rtol=0.2)


def test_frame_buffer_marks_batch_size_changes_and_starts_over_on_reset():
    h = FrameBuffer()

    def frame(step, b):
        return Frame(step=step, tick=step, batch_size=b, next_batch_size=b, n_train=100, problem="linreg",
                     train_loss=1.0 / step)
    for s in range(1, 6):
        h.add(frame(s, 8))
    for s in range(6, 9):
        h.add(frame(s, 32))
    assert h.b_changes == [(1, 8, 8), (6, 8, 32)]
    assert len(h.trace) == 8
    h.add(frame(1, 32))                   # step went back: a reset
    assert h.runs == 1 and len(h.trace) == 1 and h.b_changes == [(1, 32, 32)]
