"""The landscape panel drawn from a hand-made frame.landscape (the fields of bsim.landscape.info): what each
number is called, where the chains and the error bar land, and that every size keeps the numbers whole."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from bsim.app.format import num
from bsim.app.widgets.canvas import COLORS
from bsim.app.widgets.landscape import LandscapePanel, rate_bar
from bsim.app.widgets.landscape_data import readings
from support.app import cut_words
from support.landscape import fed


def lines(h, width=41, height=14) -> list[str]:
    return [s.text for s in LandscapePanel(h).build(width, height)]


def test_every_number_says_what_it_is_measured_or_which_prediction():
    rng = np.random.default_rng(0)
    theta = np.concatenate([rng.normal(-1, 0.1, 48), rng.normal(1.5, 0.3, 16)])
    for kind, label in (("kramers", "Kramers approx."), ("stability", "stability (iid)"), ("none", "none")):
        text = "\n".join(lines(fed(theta, kind=kind, theory=None if kind == "none" else 1.5e-3), 60, 20))
        assert "sharp U″=8" in text and "flat U″=1" in text             # the basins with their curvatures
        assert "sharp 75%" in text and "flat 25%" in text and "left 16/64" in text
        assert f"meas {num(1.2e-3)} ± {num(2e-4, 2)}" in text
        assert re.search(rf"pred (—|{re.escape(num(1.5e-3))}) {re.escape(label)}", text), text
        assert "in basin" in text                                        # the occupancy chart


def test_the_chains_histogram_stands_under_their_basin():
    theta = np.full(64, -1.0)          # every chain at the sharp minimum
    h = fed(theta)
    strips = LandscapePanel(h).build(41, 14)         # the legend, then 6 rows of the landscape
    purple = [i for s in strips[1:7] for i, (ch, color) in enumerate(_cells(s))
              if color == COLORS["purple"] and ch != " "]
    sharp_col = round((-1.0 + 2.0) / 5.0 * 40)
    assert purple and all(abs(c - sharp_col) <= 1 for c in purple), purple


def _cells(strip) -> list[tuple[str, str | None]]:
    """(character, foreground colour) of each cell of a line."""
    out = []
    for seg in strip:
        color = seg.style.color.name if seg.style and seg.style.color else None
        out += [(ch, color) for ch in seg.text]
    return out


@pytest.mark.parametrize("theory, side", [(1.2e-2, "right"), (1e-4, "left")])
def test_the_prediction_sits_outside_the_error_bar_on_the_side_it_is(theory, side):
    r = readings(fed(np.full(64, -1.0), theory=theory).latest)
    text = "".join(t for t, _c in rate_bar(r, 40))
    lo, hi, pred = text.index("├"), text.index("┤"), text.index("◆")
    assert lo < text.index("●") < hi
    assert (pred > hi) if side == "right" else (pred < lo), text


def test_the_error_bar_spans_one_standard_error_on_a_log_scale():
    r = readings(fed(np.full(64, -1.0), rate=1e-3, se=5e-4, theory=1e-2).latest)
    parts = rate_bar(r, 50)
    left, right = float(parts[0][0]), float(parts[-1][0])      # the scale's ends, written at its sides
    inner = "".join(t for t, _c in parts[1:-1])

    def cell(v):      # where v falls between the two ends, on a log scale
        return (math.log10(v) - math.log10(left)) / (math.log10(right) - math.log10(left)) * (len(inner) - 1)
    assert abs(inner.index("├") - cell(5e-4)) <= 1 and abs(inner.index("┤") - cell(1.5e-3)) <= 1
    assert abs(inner.index("●") - cell(1e-3)) <= 1 and abs(inner.index("◆") - cell(1e-2)) <= 1


@pytest.mark.parametrize("size", [(25, 8), (31, 10), (41, 14), (60, 20)])
def test_no_line_ends_in_a_cut_number_or_word(size):
    theta = np.concatenate([np.full(48, -1.0), np.full(16, 1.5)])
    text = lines(fed(theta), *size)
    items = ["sharp U″=8", "flat U″=1", "sharp 75%", "flat 25%", "left 16/64", num(1.2e-3), num(2e-4, 2),
             num(1.5e-3), "Kramers approx.", "Kramers≈", "in basin"]
    assert not cut_words(text, items), (size, text)
    joined = "\n".join(text)
    assert "sharp" in joined and num(1.2e-3) in joined and ("Kramers" in joined)
