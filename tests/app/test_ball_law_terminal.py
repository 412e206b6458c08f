"""The ball's law in a real terminal (tmux at 120x36), as a new user meets it: `bsim`, `e`, five `]`,
and the law chart soon shows measured points at B = 8 and B = 256 and their measured shrink."""

from __future__ import annotations

import re
import shutil
import sys
import time

import pytest

from support.tmux import Tmux

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="the real-terminal test drives tmux")]

#: "shrink B 8→256: ×19 ± 0.9 (se) measured", "B 8→256 ×19±0.9 meas": a measured ratio with its error
SHRINK = re.compile(r"B 8→256:? ×([0-9.]+) ?± ?([0-9.]+)")


def step_of(text: str) -> int:
    m = re.search(r"step\s+([0-9,]+)", text)
    return int(m.group(1).replace(",", "")) if m else 0


def law_columns(text: str) -> set[int]:
    """Columns of the measured points (● trail, ◆ ensemble) in the ball panel's right half (the law chart)."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if "ε-ball" in line)
    start = lines[top].index("╭─ ε-ball")
    width = len(lines[top]) - start
    return {col for line in lines[top + 2:] for col, ch in enumerate(line[start + width // 2:]) if ch in "●◆"}


def test_e_and_five_doublings_show_the_ball_s_law_measured_at_b_8_and_256(tmp_path):
    term = Tmux(f"{sys.executable} -m bsim", tmp_path)
    try:
        # the run at B = 8 long enough for its trail's ball to carry a standard error (about 40 relaxation
        # times), as a user watching the first screen would have
        term.wait_for(lambda t: step_of(t) >= 6000, 120, "step 6,000")
        term.keys("e")
        for _ in range(5):
            term.keys("]")
        start = time.monotonic()
        text = term.wait_for(lambda t: SHRINK.search(t) is not None, 30,     # 5 s asked; slack for a loaded machine
                             "the measured shrink between B = 8 and 256")
        took = time.monotonic() - start
        assert "batch size  256" in text
        assert len(law_columns(text)) >= 2, text          # points at two batch sizes, apart on the B axis
        ratio, se = (float(v) for v in SHRINK.search(text).groups())
        predicted = float(next(v for v in re.search(r"×([0-9.]+) pred|pred ×([0-9.]+)", text).groups() if v))
        # on the predicted curve: within 2 standard errors, and the rounding of the two shown numbers
        assert abs(ratio - predicted) <= 2 * se + 0.05 * predicted, text
        print(f"shrink shown {took:.1f} s after the keys: ×{ratio} ± {se} measured, ×{predicted} predicted")
    finally:
        term.close()
