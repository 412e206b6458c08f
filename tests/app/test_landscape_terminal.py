"""`bsim run escape` in a real terminal (tmux at 120x36), as a new user tries it: `e` (more chains) then `1`
(B = 1) and within 30 s the screen shows the sharp basin emptying; `e` then `9` (B = 256) in a second terminal
beside it, and over the same time the sharp basin there holds every chain. (That B = 256 still holds them after
as many steps as B = 1 took: tests/app/test_app_landscape.py, where steps are not paid in wall time.)"""

from __future__ import annotations

import re
import shutil
import sys
import time

import pytest

from support.tmux import Tmux

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="the real-terminal test drives tmux")]

SHARP = re.compile(r"sharp (\d+)%")


def sharp(text: str) -> int | None:
    m = SHARP.search(text)
    return int(m.group(1)) if m else None


def step_of(text: str) -> int:
    m = re.search(r"step\s+([0-9,]+)", text)
    return int(m.group(1).replace(",", "")) if m else 0


def test_b_1_empties_the_sharp_basin_on_screen_and_b_256_does_not(tmp_path):
    small, large = (Tmux(f"{sys.executable} -m bsim run escape", tmp_path) for _ in range(2))
    try:
        for term in (small, large):
            term.wait_for(lambda t: sharp(t) is not None, 90, "the landscape panel's occupancy")
        small.keys("e", "1")
        large.keys("e", "9")
        start = time.monotonic()
        at_256 = []            # (step, sharp %) read at B = 256 while the B = 1 terminal is watched

        def fallen(text: str) -> bool:
            other = large.screen()
            if "batch size  256" in other and "chains: 1024" in other:
                at_256.append((step_of(other), sharp(other)))
            return "batch size  1 " in text and (sharp(text) or 100) <= 50
        text = small.wait_for(fallen, 30, "the sharp basin at B = 1 down to half its chains")
        took = time.monotonic() - start
        held = large.wait_for(lambda t: step_of(t) >= at_256[0][0] + 10, 30, "10 steps at B = 256")
        at_256.append((step_of(held), sharp(held)))
        assert at_256 and all(share >= 99 for _step, share in at_256), at_256
        assert "Kramers approx." in held and "Kramers approx." in text
        print(f"B = 1: sharp {sharp(text)}% at step {step_of(text):,}, {took:.1f} s after e 1; "
              f"B = 256: sharp {min(s for _t, s in at_256)}% or more from step {at_256[0][0]} to {at_256[-1][0]}")
    finally:
        small.close()
        large.close()
