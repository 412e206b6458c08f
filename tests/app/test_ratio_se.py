"""Every measured/predicted ratio on screen carries its standard error, "settling" until it has one: the ε-ball
panel's trail and chains, a race lane's ball, the variance panel's readout; drawn from hand-made frames."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

from bsim.app.format import num
from bsim.app.history import FrameBuffer
from bsim.app.race.balls import LaneBall, SharedScale
from bsim.app.widgets.ball import BallPanel
from bsim.app.widgets.panel import fit
from bsim.app.widgets.variance import VariancePanel
from bsim.frame import Frame
from bsim.stats.info import BallInfo, BallLaw, BallLawPoint, RadiusMeasure

N = 1024
#: the ball panel's inside at 120x36, 100x30 and 80x24, and a race lane's column
WIDTHS = (41, 36, 26, 22)


def ball_info(meas: float | None, se: float | None, pred: float) -> BallInfo:
    return BallInfo(label="", sampling="shuffle", center=(0.0, 0.0), center_label="θ*", radius_theory=pred,
                    radius_measured=meas, radius_se=se, window_steps=400, burn_in=100, burn_in_left=0,
                    covariance=None, radius_additive=None, radius_small_lr=None, lr_limit=None, spectral_radius=None,
                    stable=True, note="", kind="exact")


def frame(step: int, meas: float, se: float | None, pred: float = 0.0181, chains=None, k: int | None = None) -> Frame:
    point = BallLawPoint(batch_size=8, lr=0.05, momentum=0.0, sampling="shuffle", theory=pred, theory_kind="exact",
                         trail=RadiusMeasure(meas, se, 40), chains=chains, current=True)
    law = BallLaw(points=(point,), curve_batch_sizes=(1, 2), curve=(None, None), curve_kind="exact",
                  other_curve=(None, None), other_kind="none")
    return Frame(step=step, tick=step, batch_size=8, next_batch_size=8, lr=0.05, next_lr=0.05, momentum=0.0,
                 sampling="shuffle", n_train=N, problem="linreg", theta=(0.01, 0.0), theta_star=(0.0, 0.0),
                 dist_to_opt=0.01, ball_radius_theory=pred, ball_radius=meas, ball=ball_info(meas, se, pred),
                 ball_law=law, chains=k, chains_ball_radius=chains.radius if chains is not None else None)


def line(panel: BallPanel, f: Frame, width: int) -> str:
    panel.history.add(f)
    return "".join(text for text, _color in panel.measured_line(f, width))


def whole(text: str, width: int) -> None:
    """Within the width, and a ratio is shown whole (with its ±) or not at all."""
    assert len(text) <= width, text
    for ratio in re.findall(r"×\S*", text):
        assert re.fullmatch(r"×[0-9.]+( ?± ?[0-9.e-]+)?|×…", ratio) and ("±" in text or "settling" in text), text
    assert not text.rstrip().endswith(("±", "×"))


def test_the_trails_ratio_carries_its_standard_error_and_reads_settling_without_one():
    panel = BallPanel(FrameBuffer())
    text = line(panel, frame(1, 0.0172, 0.0007), 80)
    ratio, se = 0.0172 / 0.0181, 0.0172 / 0.0181 * 0.0007 / 0.0172
    assert f"meas trail 0.0172 ×{ratio:.2f} ± {num(se, 1)}" in text            # ×0.95 ± 0.04
    assert text.startswith("meas trail 0.0172 ×0.95 ± 0.04")
    settling = line(BallPanel(FrameBuffer()), frame(1, 0.0172, None), 80)
    assert "meas trail 0.0172 ×… settling" in settling and "±" not in settling and "0.95" not in settling


def test_the_chains_ratio_is_the_epoch_averaged_measure_with_its_standard_error():
    chains = RadiusMeasure(0.0194, 0.0006, 64)
    text = line(BallPanel(FrameBuffer()), frame(1, 0.0172, 0.0007, chains=chains, k=64), 100)
    ratio = 0.0194 / 0.0181
    assert f"K=64 0.0194 ×{ratio:.2f} ± {num(ratio * 0.0006 / 0.0194, 1)} (epochs)" in text   # ×1.07 ± 0.03
    early = line(BallPanel(FrameBuffer()), frame(1, 0.0172, 0.0007, chains=RadiusMeasure(0.0194, None, 64), k=64), 100)
    assert "K=64 0.0194 ×… settling (1 fr)" in early         # the frames' average until the epochs give an se


def test_the_readouts_fit_the_panel_widths_dropping_the_ratio_whole():
    chains = RadiusMeasure(0.0194, 0.0006, 64)
    for width in WIDTHS:
        for f in (frame(1, 0.0172, 0.0007), frame(1, 0.0172, None), frame(1, 0.0172, 0.0007, chains=chains, k=64)):
            text = line(BallPanel(FrameBuffer()), f, width)
            whole(text, width)
            assert text.startswith("meas ") and "0.0172" in text
    assert "×0.95±0.04" in line(BallPanel(FrameBuffer()), frame(1, 0.0172, 0.0007), 26)   # narrow: no spaces


def test_a_race_lanes_ball_shows_the_ratio_with_its_standard_error():
    buffer = FrameBuffer()
    lane = LaneBall(SimpleNamespace(buffer=buffer, batch_size=8, key=8, label="B=8", color="blue"), SharedScale())
    f = frame(1, 0.0287, 0.0012, pred=0.0302)
    buffer.add(f)
    column = "\n".join("".join(seg.text for seg in strip) for strip in lane.column(36, 12))
    ratio = 0.0287 / 0.0302
    assert f"0.0287 ×{ratio:.2f} ± {num(ratio * 0.0012 / 0.0287, 1)}" in column            # ×0.95 ± 0.04
    buffer.add(frame(2, 0.0287, None, pred=0.0302))
    assert "×… settling" in "".join(seg.text for strip in lane.column(36, 12) for seg in strip)


def test_the_variance_readout_carries_the_ratios_standard_error():
    def readout(here, t_here, width=60):
        groups = VariancePanel.readouts(16, here, t_here)
        return ["".join(t for _rank, parts in g for t, _c in parts) for g in groups][::2]

    long, short = readout((16, 0.0206, 800, 0.0005, 0.0201), 0.0201)
    ratio = 0.0206 / 0.0201
    assert long == f"B=16 meas 0.0206 theory 0.0201 ×{ratio:.2f} ± {num(0.0005 / 0.0201, 1)}"   # ×1.02 ± 0.02
    assert short.startswith("B=16 ● 0.0206 ━ 0.0201 ×1.02 ± 0.02")
    long, _ = readout((16, 0.0206, 5, None, 0.0201), 0.0201)
    assert long == "B=16 meas 0.0206 theory 0.0201 ×… settling"
    assert math.isclose(ratio, 1.0249, rel_tol=1e-3)
    compact = fit(VariancePanel.readouts(16, (16, 0.0206, 800, 0.0005, 0.0201), 0.0201), 41)
    assert "".join(t for t, _c in compact) == "B=16 meas 0.0206 theory 0.0201 ×1.02±0.02"   # the words before spaces


def test_the_help_says_what_the_ratio_and_its_error_are():
    from bsim.app.race.help import race_help_text
    from bsim.app.screens import help_text
    text = " ".join(help_text().plain.split())
    assert "'×1.02 ± 0.02': measured / theory ± its standard error" in text
    assert "as each radius under the plane reads its ratio" in text
    assert "×ratio ± se" in " ".join(race_help_text().plain.split())
