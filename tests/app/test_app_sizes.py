"""Every size (issue 11): at 80x24 and 100x30 no panel line ends in a cut word or number; 120x36 keeps all.

The default scenario is stepped as in the snapshots (1500 steps, ``]``, 1500
more). Each readout item is built here from the frame's own numbers
(``bsim.app.format.num``), so a cut value ("0.1" of "0.109") is told from a whole one.
"""

from __future__ import annotations

import pytest
from support.app import drive, panel_text

from bsim.app.format import noise_scale_text, num
from bsim.scenario import find_scenario

pytestmark = pytest.mark.slow      # its screens (3,000 steps at three sizes) are drawn once for the module

SIZES = [(80, 24), (100, 30), (120, 36)]


async def stepped(d):
    for _ in range(30):
        await d.steps(50)
    await d.press("right_square_bracket")
    for _ in range(30):
        await d.steps(50)
    app = d.app
    panels = {pid: panel_text(app, pid) for pid in ("loss", "variance", "ball")}
    titles = {pid: (app.query_one(f"#{pid}").border_title, app.query_one(f"#{pid}").size.width)
              for pid in ("loss", "variance", "ball")}
    return app.history.latest, panels, titles


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    out = {}
    for size in SIZES:
        _app, result = drive(tmp_path_factory.mktemp(f"s{size[0]}"), stepped, sc=find_scenario("default"), size=size)
        out[size] = result
    return out


def items(f) -> dict[str, list[str]]:
    """What each panel may show, whole: (panel id) -> items, the numbers formatted as the panels do."""
    stats = f.stats
    here = next(p for p in stats.variance_measured if p.batch_size == f.next_batch_size)
    return {
        "loss": ["╌ test", f"batch {num(f.batch_loss)}", f"train {num(f.train_loss)}", f"test {num(f.test_loss)}",
                 f"step · last {num(2000)} (w)"],
        "variance": ["● measured", "┆B", "┆B_simple", f"B={f.next_batch_size}", f"meas {num(here.grad_noise_mean)}",
                     f"theory {num(here.theory_mean)}", f"trΣ {num(f.trace_sigma)}",
                     f"B_simple {noise_scale_text(stats.noise_scale_smoothed, f.n_train)[0]}", f"n={num(here.steps)}"],
        # the plane beside the ball's law (120x36, 100x30), the plane alone at 80x24 (L shows the law)
        "ball": ["○ meas", "○ B=8", f"pred {num(f.ball_radius_theory)}", "reshuffled sampled ±",
                 f"meas trail {num(f.ball_radius)}", "radius, log", "●trail", "shrink B 8→16"],
    }


def cut_items(text: str, wanted: list[str]) -> list[str]:
    """Lines that end in a strict beginning of an item (a word or number cut by the border)."""
    cut = []
    for line in text.splitlines():
        end = line.rstrip()
        if any(end.endswith(item) for item in wanted):     # the line ends in a whole item (a legend's "╌ test")
            continue
        for item in wanted:
            if item in line:
                continue
            for k in range(2, len(item)):
                head = item[:k]
                if end.endswith(head) and (len(end) == k or end[-k - 1] == " ") and not head.endswith(" "):
                    cut.append(f"{end!r} cuts {item!r}")
    return cut


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_panel_line_ends_in_a_cut_item(screens, size):
    f, panels, _titles = screens[size]
    wanted = items(f)
    for pid, text in panels.items():
        assert cut_items(text, wanted[pid]) == [], (pid, text)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_essential_numbers_are_shown_whole_at_every_size(screens, size):
    """Train and test loss, the measured and predicted variance and ball: on screen, however narrow."""
    f, panels, _titles = screens[size]
    here = next(p for p in f.stats.variance_measured if p.batch_size == f.next_batch_size)
    assert f"train {num(f.train_loss)}" in panels["loss"]
    assert f"test {num(f.test_loss)}" in panels["loss"]
    for value in (num(here.grad_noise_mean), num(here.theory_mean), num(f.trace_sigma)):
        assert f" {value}" in panels["variance"], (value, panels["variance"])
    for value in (num(f.ball_radius_theory), num(f.ball_radius)):
        assert f" {value}" in panels["ball"], (value, panels["ball"])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_panel_titles_are_whole(screens, size):
    _f, _panels, titles = screens[size]
    title, width = titles["variance"]
    assert title in ("Variance across batches", "Variance vs B")
    assert len(title) + 2 <= width, titles     # "─ title ─" within the top border: no "…"
    assert (title == "Variance across batches") == (size[0] >= 100)


def test_120x36_keeps_every_item(screens):
    f, panels, _titles = screens[(120, 36)]
    wanted = items(f)
    for pid, text in panels.items():
        missing = [item for item in wanted[pid] if item not in text]
        assert missing == [], (pid, missing, text)
