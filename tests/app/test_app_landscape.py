"""The landscape panel in the app on the bundled `escape` scenario (stepped by the test, paused): it takes
the ε-ball's place, says what each number is, and its occupancy answers [ and ]; each race lane shows its
own landscape."""

from __future__ import annotations

import re

import pytest
from support.app import cut_words, drive
from support.race import race_of

from bsim.app.format import num
from bsim.app.race.balls import RaceBallsPanel
from bsim.app.race.history import RaceHistory
from bsim.scenario import find_scenario

#: "sharp 73%": the share of the chains in the sharp basin, as the panel writes it
SHARP = re.compile(r"sharp (\d+)%")


def escape(chains: int = 32):
    """The bundled `escape` scenario, smaller: N = 256 examples, ``chains`` chains, every one in the sharp basin."""
    sc = find_scenario("escape")
    sc.problem.n_train, sc.chains = 256, chains
    return sc


def sharp_share(text: str) -> int:
    return int(SHARP.search(text).group(1))


async def steps(d, n: int) -> None:
    for _ in range(n // 50):
        await d.steps(50)


def test_the_landscape_takes_the_ball_s_place_and_labels_every_number(tmp_path):
    async def script(d):
        await steps(d, 100)
        return d.panel("landscape"), d.app.history.latest, d.app.query_one("#ball").display, \
            d.app.query_one("#landscape").display

    _app, (text, f, ball_shown, landscape_shown) = drive(tmp_path, script, sc=escape())
    assert landscape_shown and not ball_shown
    land = f.landscape
    sharp, flat = land.basins
    assert f"sharp U″={num(max(sharp.curvature))}" in text and f"flat U″={num(max(flat.curvature))}" in text
    assert f"sharp {100 * land.occupancy[0]:.0f}%" in text and f"left {land.escaped}/32" in text
    assert "escape/step meas" in text and "Kramers approx." in text       # measured, and which prediction
    assert "in basin" in text                                             # the occupancy chart's label


@pytest.mark.slow      # 450 steps of 32 chains under the pilot
def test_a_smaller_batch_empties_the_sharp_basin_and_a_larger_one_holds_what_is_left(tmp_path):
    """B = 256 holds every chain; eight [ (B = 1): the batch noise carries chains over the barrier; eight ]
    (back to 256): the chains left in the sharp basin stay there."""
    async def script(d):
        await steps(d, 100)
        held = sharp_share(d.panel("landscape"))
        for _ in range(8):
            await d.press("left_square_bracket")
        await steps(d, 200)
        small = sharp_share(d.panel("landscape"))
        b_small = d.app.history.latest.next_batch_size
        for _ in range(8):
            await d.press("right_square_bracket")
        await steps(d, 50)            # the chains on their way over the barrier settle into a basin
        settled = sharp_share(d.panel("landscape"))
        await steps(d, 100)
        return held, b_small, small, settled, sharp_share(d.panel("landscape")), d.panel("landscape")

    _app, (held, b_small, small, settled, later, text) = drive(tmp_path, script, sc=escape())
    assert held == 100 and b_small == 1
    assert small <= 70, text                     # at B = 1 the barrier is about 1 T: a third leave in 200 steps
    assert abs(later - settled) <= 100 / 32 + 0.5, text      # at B = 256 (340 T) at most one chain moves
    assert "B=256" in text                                      # the occupancy chart marks the change


def test_each_race_lane_shows_its_own_landscape_and_occupancy():
    race = race_of("escape", (1, 256), n_train=256, chains=32)
    history = RaceHistory()
    for _ in range(8):
        for _ in range(50):
            race.step()
        history.add(race.frame(timing=False))
    lines = [s.text for s in RaceBallsPanel(history).build(100, 14)]
    text = "\n".join(lines)
    shares = {int(b): int(p) for b, p in re.findall(r"B=(\d+) sharp (\d+)%", text)}
    assert set(shares) == {1, 256}, text
    assert shares[256] == 100 and shares[1] <= 90, text          # the small batch leaves, the large one stays
    assert "sharp U″=4" in lines[0]                              # the basins named once, above the lanes


def test_at_every_size_the_panel_keeps_its_numbers_whole(tmp_path):
    """80x24, 100x30 and 120x36 after B = 1 (chains escaping, a measured rate with its error): no line of the
    panel ends in a cut word or number, and the occupancy, the curvatures and the measured rate are on screen at
    every size."""
    async def script(d):
        await steps(d, 50)
        await d.press("1")
        await steps(d, 100)
        out = {}
        for size in ((80, 24), (100, 30), (120, 36)):
            await d.pilot.resize_terminal(*size)
            await d.pilot.pause()
            out[size] = d.panel("landscape")
        return d.app.history.latest, out

    _app, (f, panels) = drive(tmp_path, script, sc=escape())
    land = f.landscape
    assert land.escape_rate_se is not None       # a measured rate with its standard error to show
    items = [f"sharp {100 * land.occupancy[0]:.0f}%", f"flat {100 * land.occupancy[1]:.0f}%", "sharp U″=4",
             "flat U″=0.5", num(land.escape_rate), num(land.escape_rate_se, 2), num(land.escape_rate_theory),
             "Kramers approx.", "Kramers≈", "escape/step", f"left {land.escaped}/32", "in basin"]
    for size, text in panels.items():
        assert not cut_words(text.splitlines(), items), (size, text)
        assert items[0] in text and num(land.escape_rate) in text and "Kramers" in text, (size, text)
        assert "sharp U″=4" in text and "flat U″=0.5" in text, (size, text)     # on the curve at 80x24
