"""steps/s and samples/s on screen: averaged over at least a second (issue 18: one frame's rate swung
25 to 2066 steps/s around a key press). A fake clock makes the figures hand-checkable."""

from __future__ import annotations

import pytest

from bsim.simulation import RATE_WINDOW, RateWindow


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_after_steady_steps_reads_the_average_over_a_second():
    clock = Clock()
    rate = RateWindow(clock)
    tick = 0
    for _ in range(20):              # 2 s at 1000 steps/s, 8 samples a step, a frame every 0.1 s
        clock.t += 0.1
        tick += 100
        steps, samples = rate.read(tick, 8 * tick)
    assert steps == pytest.approx(1000) and samples == pytest.approx(8000)
    clock.t += 0.01                   # a frame right after a key press: 50 steps in 10 ms (5000/s alone)
    tick += 50
    steps, _ = rate.read(tick, 8 * tick)
    # the window starts at the newest frame at least 1 s old: t = 1.0 (tick 1000); now t = 2.01, tick 2050
    assert RATE_WINDOW == 1.0
    assert steps == pytest.approx((2050 - 1000) / 1.01)


def test_a_pause_restarts_the_window():
    clock = Clock()
    rate = RateWindow(clock)
    clock.t, tick = 1.0, 1000
    assert rate.read(tick, tick) == pytest.approx((1000.0, 1000.0))
    clock.t = 6.0                     # paused for 5 s: no step, no rate
    assert rate.read(tick, tick) == (None, None)
    clock.t = 6.5                     # resumed: 500 steps in 0.5 s, not 500 over the 5.5 s since the last step
    assert rate.read(tick + 500, tick + 500) == pytest.approx((1000.0, 1000.0))


def test_a_reset_of_the_samples_restarts_the_window():
    clock = Clock()
    rate = RateWindow(clock)
    clock.t = 1.0
    rate.read(100, 800)
    clock.t = 1.5
    assert rate.read(150, 0) == (None, None)      # a reset: the samples count starts again
    clock.t = 2.0
    assert rate.read(200, 400) == pytest.approx((100.0, 800.0))
