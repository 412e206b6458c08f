"""The loss chart through the app: a sliding window (w: the whole run), steps or epochs (x), a steady y
range, merged batch-size marks, the chains' band."""

from __future__ import annotations

import pytest
from support.app import Driver, drive, panel_text


def axis_labels(text: str) -> list[str]:
    """The y labels of the chart (the text left of ┤)."""
    return [line.split("┤")[0].strip() for line in text.splitlines() if "┤" in line]


def x_range(text: str) -> tuple[float, float]:
    line = next(ln for ln in text.splitlines() if ln.strip() and ln.strip()[0].isdigit() and "┤" not in ln)
    parts = line.split()
    return float(parts[0].rstrip("k")), float(parts[-1].rstrip("k"))


@pytest.mark.slow
def test_window_epochs_steady_y_and_merged_marks(tmp_path):
    async def script(d: Driver):
        for _ in range(60):
            await d.steps(50)
        text = panel_text(d.app, "loss")
        assert "step · last 2000 (w)" in text
        lo, hi = x_range(text)
        assert hi == 3000 and lo >= 1000                      # the last 2000 steps, not the whole run
        await d.press("w")
        text = panel_text(d.app, "loss")
        assert "whole run" in text and x_range(text)[0] < 100
        assert d.notice == "loss: the whole run"
        await d.press("x")
        text = panel_text(d.app, "loss")
        assert "epoch · whole run" in text and x_range(text)[1] < 1000    # epochs: 3000 steps x 8 / 256
        await d.press("x", "w")
        labels = []
        for _ in range(8):                                     # the y range holds from frame to frame
            await d.steps(10)
            labels.append(axis_labels(panel_text(d.app, "loss")))
        assert all(lab == labels[0] for lab in labels), labels
        for _ in range(6):                                     # six B changes within a few steps
            await d.press("right_square_bracket")
            await d.steps(2)
            await d.press("left_square_bracket")
            await d.steps(2)
        text = panel_text(d.app, "loss")
        assert "B changes" in text                             # merged, not a hatching of lines
        assert text.count("B16") + text.count("B8") <= 2
    drive(tmp_path, script)
