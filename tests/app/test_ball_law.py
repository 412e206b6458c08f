"""The ε-ball panel's law chart and its plane, drawn from hand-made frames: the points sit at their log
positions, the shrink carries the delta method's standard error, the plane zooms with a label when the
ball would be under 3 cells across, and the trail restarts at a change of setting."""

from __future__ import annotations

import math

import pytest

from bsim.app.format import num
from bsim.app.history import FrameBuffer
from bsim.app.widgets.ball import BallPanel
from bsim.app.widgets.ball_law import law_chart, shrink, shrink_line, x_range
from bsim.app.widgets.ball_scale import MIN_CELLS, label_width
from bsim.app.widgets.canvas import COLORS
from bsim.frame import Frame
from bsim.stats.info import BallLaw, BallLawPoint, RadiusMeasure

N = 1024
SIZES = tuple(2 ** k for k in range(10))        # 1 .. 512, as bsim.stats.ball_law gives them


def radius(b: float) -> float:
    """A made-up law: r = 0.02 sqrt((N - B) / (B (N - 1))), the shape of the iid ball at fixed lr."""
    return 0.02 * math.sqrt((N - b) / (b * (N - 1)))


def point(b, trail=None, chains=None, current=False, sampling="shuffle", lr=0.05) -> BallLawPoint:
    return BallLawPoint(batch_size=b, lr=lr, momentum=0.0, sampling=sampling, theory=radius(b), theory_kind="exact",
                        trail=trail, chains=chains, current=current)


def law(*points) -> BallLaw:
    return BallLaw(points=points, curve_batch_sizes=SIZES, curve=tuple(radius(b) for b in SIZES), curve_kind="exact",
                   other_curve=tuple(0.8 * radius(b) for b in SIZES), other_kind="reshuffled")


def marks(chart, glyph: str) -> list[tuple[int, int]]:
    """(row, column) of every cell holding ``glyph``."""
    return sorted(rc for rc, (ch, _color) in chart.canvas.text.items() if ch == glyph)


def test_the_points_land_at_their_log_positions_on_the_curve():
    r8, r256 = radius(8), radius(256)
    drawn = law(point(8, trail=RadiusMeasure(r8 * 1.01, r8 * 0.03, 40)),
                point(256, trail=RadiusMeasure(r256 * 0.98, r256 * 0.03, 40),
                      chains=RadiusMeasure(r256 * 1.3, r256 * 0.01, 64), current=True))
    chart = law_chart(drawn, 40, 14, N, 256)
    lo, hi = x_range(drawn, drawn.points, N)
    assert (lo, hi) == (4, 512)                  # the B visited, padded by a factor 2 each side
    w, h = chart.canvas.dots_w, chart.canvas.dots_h
    y_lo, y_hi = chart.sy.lo, chart.sy.hi

    def cell(b, r):   # the independent log-log map: fraction of the decades spanned, rounded to a dot, then a cell
        x = (math.log10(b) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (w - 1)
        y = (h - 1) - (math.log10(r) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)) * (h - 1)
        return int(round(y)) // 4, int(round(x)) // 2

    assert marks(chart, "●") == sorted([cell(8, r8 * 1.01), cell(256, r256 * 0.98)])
    assert marks(chart, "◆") == [cell(256, r256 * 1.3)]        # the ensemble: apart from the trail, in its own glyph
    assert marks(chart, "●")[0][1] < marks(chart, "●")[1][1]   # B = 8 left of B = 256, ...
    assert marks(chart, "●")[0][0] < marks(chart, "●")[1][0]   # ... and higher: the ball shrinks
    # the curve in force passes through the trail's points (they measure 1.01x and 0.98x of it)
    orange = list(COLORS).index("orange")
    for row, col in marks(chart, "●"):
        near = chart.canvas.color[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
        assert (near == orange).any()


def test_the_shrink_is_measured_over_predicted_with_the_delta_method_standard_error():
    a, b = RadiusMeasure(0.0062, 0.0002, 30), RadiusMeasure(0.0013, 0.00003, 30)
    drawn = law(point(8, trail=a), point(256, trail=b, current=True))
    s = shrink(drawn, None)
    ratio = 0.0062 / 0.0013
    se = ratio * math.sqrt((0.0002 / 0.0062) ** 2 + (0.00003 / 0.0013) ** 2)
    assert (s.b_small, s.b_large, s.source) == (8, 256, "trail")
    assert s.measured == pytest.approx(ratio) and s.se == pytest.approx(se)
    assert s.predicted == pytest.approx(radius(8) / radius(256))
    text = "".join(t for t, _c in shrink_line(s, "exact", 100))
    assert text == (f"shrink B 8→256: ×{num(ratio, 2)} ± {num(se, 1)} (se) measured (trail), "
                    f"×{num(radius(8) / radius(256), 2)} predicted (exact)")
    narrow = "".join(t for t, _c in shrink_line(s, "exact", 40))
    assert narrow.startswith("shrink B 8→256: ×4.8±0.2 meas") and len(narrow) <= 40
    # the ensemble's ratio is taken when it is the more precise one
    chains = law(point(8, trail=a, chains=RadiusMeasure(0.0060, 0.00003, 64)),
                 point(256, trail=b, chains=RadiusMeasure(0.0013, 0.00001, 64), current=True))
    assert shrink(chains, 64).source == "K=64"
    # each end its own most precise measurement: the trail at B = 8 (no chains yet), the ensemble at B = 256
    mixed = law(point(8, trail=a), point(256, trail=RadiusMeasure(0.0013, None, 3),
                                         chains=RadiusMeasure(0.0013, 0.00001, 64), current=True))
    s = shrink(mixed, 64)
    assert s.source == "trail/K=64"
    assert s.se == pytest.approx(ratio * math.sqrt((0.0002 / 0.0062) ** 2 + (0.00001 / 0.0013) ** 2))


def test_the_shrink_reads_settling_until_both_ends_have_a_standard_error():
    drawn = law(point(8, trail=RadiusMeasure(0.0062, None, 3)), point(256, trail=RadiusMeasure(0.0013, 1e-5, 30),
                                                                      current=True))
    s = shrink(drawn, None)
    assert s.measured is None
    assert "settling" in "".join(t for t, _c in shrink_line(s, "exact", 60))
    assert shrink(law(point(8, current=True)), None) is None      # one batch size: nothing to compare


def test_a_setting_off_the_curve_is_left_out_of_the_chart_and_the_shrink():
    off = BallLawPoint(batch_size=64, lr=0.2, momentum=0.0, sampling="shuffle", theory=radius(64) * 2,
                       theory_kind="exact", trail=RadiusMeasure(radius(64) * 2, 1e-5, 30), chains=None, current=False)
    drawn = law(point(8, trail=RadiusMeasure(radius(8), 1e-5, 30), current=True), off)
    assert shrink(drawn, None) is None
    assert len(marks(law_chart(drawn, 40, 14, N, 8), "●")) == 1


def frame(step, b=8, pred=0.004, meas=None, theta=(0.001, 0.0), lr=0.05, momentum=0.0, sampling="shuffle",
          ball_law=None) -> Frame:
    return Frame(step=step, tick=step, batch_size=b, next_batch_size=b, lr=lr, next_lr=lr, momentum=momentum,
                 sampling=sampling, n_train=N, problem="linreg", theta=theta, theta_star=(0.0, 0.0),
                 dist_to_opt=math.hypot(*theta), ball_radius_theory=pred, ball_radius=meas, ball_law=ball_law)


def plane_text(panel: BallPanel, width: int = 41, height: int = 14) -> str:
    return "\n".join("".join(seg.text for seg in strip) for strip in panel.build(width, height))


def cells_across(panel: BallPanel, f, width: int = 41, height: int = 14) -> float:
    """The predicted ball's diameter in cells of the plane as drawn (the plane alone: its chart's size)."""
    ylw = label_width(panel.scale.radius)
    xlim, _ylim = panel.window(f, width - ylw - 1, height - 1 - 3 - 2)
    return 2 * f.ball_radius_theory / ((xlim[1] - xlim[0]) / (width - ylw - 1))


def test_the_plane_zooms_with_a_label_when_the_ball_would_be_under_3_cells_and_keeps_the_old_ring():
    history = FrameBuffer()
    panel = BallPanel(history)
    panel.view = "plane"
    for s in range(1, 40):
        history.add(frame(s, meas=0.0041))
    first = plane_text(panel)
    assert "zoom" not in first
    assert cells_across(panel, history.latest) >= MIN_CELLS
    history.add(frame(40, b=16, pred=0.0029))          # 1.4x smaller: still over 3 cells, the scale holds
    held = panel.scale.radius
    assert "zoom" not in plane_text(panel) and panel.scale.radius == held
    history.add(frame(41, b=256, pred=0.0004))         # 10x smaller than the first: under 3 cells on that scale
    text = plane_text(panel)
    assert f"zoom ×{num(held / panel.scale.radius, 2)}" in text
    assert cells_across(panel, history.latest) >= MIN_CELLS
    assert "○ B=16" in text or "○B=16" in text        # the setting left behind, as a ring of its own colour
    pink = [seg for strip in panel.build(41, 14) for seg in strip if seg.style and seg.style.color
            and seg.style.color.name == COLORS["pink"] and seg.text.strip()]
    assert pink
    # after z the axes read offsets from θ*, whole and distinct however small the window
    panel.refit()
    labels = [line.split("┤")[0].strip() for line in plane_text(panel).splitlines() if "┤" in line and "├" not in line]
    assert len(labels) == len(set(labels)) == 2 and labels[0].startswith("+") and labels[1].startswith("-")


def test_the_trail_restarts_at_any_change_of_b_lr_momentum_or_sampling():
    history = FrameBuffer()
    step = 0
    for change in ({}, {"b": 16}, {"b": 16, "lr": 0.1}, {"b": 16, "lr": 0.1, "momentum": 0.5},
                   {"b": 16, "lr": 0.1, "momentum": 0.5, "sampling": "iid"}):
        for _ in range(30):
            step += 1
            history.add(frame(step, theta=(0.001 * step, 0.0), **change))
        assert len(history.iterates) == 30                         # only the setting's own iterates
        assert history.iterates[0] == (0.001 * (step - 29), 0.0)


def test_the_split_panel_shows_the_plane_and_the_law_side_by_side():
    history = FrameBuffer()
    panel = BallPanel(history)
    r8, r256 = radius(8), radius(256)
    drawn = law(point(8, trail=RadiusMeasure(r8, r8 * 0.03, 40)),
                point(256, trail=RadiusMeasure(r256, r256 * 0.03, 40), current=True))
    for s in range(1, 5):
        history.add(frame(s, b=256, pred=r256, meas=r256, ball_law=drawn))
    for width, height in ((41, 14), (36, 13)):           # the ball panel's inside at 120x36 and 100x30
        text = plane_text(panel, width, height)
        lines = text.splitlines()
        assert len(lines) == height and all(len(line) == width for line in lines)
        assert "θ₂" in text and "radius, log" in text and "●trail" in text.replace(" ", "")
        assert text.count("●") >= 2 + 1                  # the two points and the legend's
        assert "B 8→256" in text and f"×{num(r8 / r256, 2)}±" in text.replace(" ", "")   # measured, with its se
    assert "radius" not in plane_text(panel, 26, 9)      # 80x24: the plane alone, L shows the law


def test_a_diverged_run_draws_the_plane_alone_and_no_empty_law():
    """No prediction (unstable lr), nothing measured, θ not finite: the plane with its notice, not an empty chart."""
    unstable = BallLaw(points=(BallLawPoint(8, 3.2, 0.0, "shuffle", None, "none", None, None, True),),
                       curve_batch_sizes=SIZES, curve=(None,) * len(SIZES), curve_kind="none",
                       other_curve=(None,) * len(SIZES), other_kind="none")
    history = FrameBuffer()
    panel = BallPanel(history)
    history.add(frame(1, pred=None, ball_law=unstable, theta=(1e30, 2.0)))
    history.add(frame(2, pred=None, ball_law=unstable, theta=(float("nan"), 2.0)))
    text = plane_text(panel)
    assert "pred —" in text and "radius, log" not in text and "θ₂" in text
