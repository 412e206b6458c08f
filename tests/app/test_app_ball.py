"""The epsilon-ball panel through the app: its scale holds across settings, z re-fits it, the ensemble's
cloud (e) agrees with the prediction under shuffle, and the picture does not depend on how often frames came."""

from __future__ import annotations

import re

import pytest
from support.app import Driver, drive, panel_text, small

from bsim.scenario import find_scenario


def scale_line(text: str) -> str:
    """The scale bar's line: '├──┤ 0.05 (1 cell = 0.00676 in θ)', or '├──┤ 0.002 zoom ×8 (cell 5.63e-4)'."""
    return next(line for line in text.splitlines() if "1 cell =" in line or "(cell " in line)


def cell(text: str) -> float:
    value = re.search(r"cell(?: =)? ([0-9.e+-]+)", scale_line(text)).group(1)
    return float(value)


def test_the_plane_zooms_with_a_label_when_b_grows_and_z_refits(tmp_path):
    async def script(d: Driver):
        await d.press("L", "L")                       # the plane alone (beside the law its scale bar is short)
        assert d.notice.startswith("ε-ball: the parameter plane")
        for _ in range(16):
            await d.steps(50)
        assert d.app.history.latest.ball_radius is not None    # measured (after the burn-in of ~620 steps)
        before = panel_text(d.app, "ball")
        r8 = d.app.history.latest.ball_radius_theory
        await d.press("8")                            # B = 128 in one key (N = 256)
        assert d.sim.batch_size == 128
        after = panel_text(d.app, "ball")             # at once, before any step at B = 128
        r128 = d.app.history.latest.ball_radius_theory
        assert r128 < r8 / 3                          # the ball shrinks...
        assert "zoom ×" in after and cell(after) < cell(before) / 2   # ...and the plane zooms, saying so
        assert 2 * r128 / cell(after) >= 3            # the new ball is at least 3 cells across
        assert "○ B=8" in after or "○B=8" in after    # the previous setting's ring stays, labelled
        for _ in range(12):
            await d.steps(50)
        assert cell(panel_text(d.app, "ball")) == cell(after)     # held while the ball stays in range
        await d.press("z")
        refit = panel_text(d.app, "ball")
        assert "zoom" not in refit and 3 <= 2 * r128 / cell(refit)   # z fits again to the ball in force
    drive(tmp_path, script)


@pytest.mark.slow
def test_the_scale_does_not_depend_on_how_often_frames_came(tmp_path):
    """The live app (a frame every few steps) and an export (a frame every 50 steps) draw the same plane."""
    lines = []
    for chunk in (3, 50):
        async def script(d: Driver, chunk=chunk):
            await d.press("L", "L")                   # the plane alone, with the whole scale bar
            while d.sim.tick < 600:
                await d.steps(chunk)
            return scale_line(panel_text(d.app, "ball"))
        lines.append(drive(tmp_path, script, sc=small())[1])
    assert lines[0] == lines[1]


@pytest.mark.slow
def test_e_builds_an_ensemble_whose_ball_matches_the_shuffle_prediction(tmp_path):
    """The default scenario (shuffle, N = 1024): 256 chains, averaged over 36 frames after burn-in, within 3%.

    The per-chain |theta - theta*|^2 has relative spread ~1 (d = 2); 256 chains x 36 frames 50 steps apart
    (about one relaxation time) give a relative standard error of the ball near 1%.
    """
    async def script(d: Driver):
        await d.steps(300)
        await d.press("e")
        assert d.notice.startswith("chains: 64")
        await d.press("e")
        assert d.notice.startswith("chains: 256")
        for _ in range(40):
            await d.steps(50)
        f = d.app.history.latest
        assert f.chains == 256 and f.ball.kind == "reshuffled"
        text = panel_text(d.app, "ball")
        assert "∴ 256" in text and "◆K=256" in text and "reshuffled sampled ±" in text   # the kind, computed over sampled permutations ± its se
        ratio = float(re.search(r"K=256 [0-9.]+ ×([0-9.]+)", text).group(1))
        assert abs(ratio - 1) <= 0.03, text
        loss = panel_text(d.app, "loss")
        assert "▒ chains 10-90%" in loss and "K=256 " in loss
        await d.press("e")
        await d.press("e")                          # 1024 -> 1: the run alone again
        await d.steps(1)
        assert d.notice.startswith("chains: 1") and d.app.history.latest.chains is None
    drive(tmp_path, script, sc=find_scenario("default"))


def test_b_simple_is_one_steady_value_in_the_counters_and_the_variance_panel(tmp_path):
    """Near theta* one step's tr(Sigma)/|G|^2 jumps by 10x; the screen shows the ratio of means over 256 steps."""
    async def script(d: Driver):
        await d.steps(1500)
        shown, raw = [], []
        for _ in range(5):
            await d.steps(25)
            counters = panel_text(d.app, "counters")
            value = re.search(r"B_simple\s+(\S+)", counters).group(1)
            variance = panel_text(d.app, "variance")
            assert re.search(rf"B_simple {re.escape(value)}( |$)", variance, re.M)   # the same number in both views
            f = d.app.history.latest
            shown.append(f.stats.noise_scale_smoothed)
            raw.append(f.noise_scale)
        assert max(shown) / min(shown) < 1.3
        assert max(raw) / min(raw) > 2 * max(shown) / min(shown)     # what the screen showed before
    drive(tmp_path, script, sc=find_scenario("default"))


def test_the_plane_keeps_its_contours_after_r_and_p(tmp_path):
    """The panel asks once for a grid of the plane; after r (reset) and p (another problem) the contours stay,
    drawn from the loss of the problem now run (checked at grid points against its own train_loss). Before,
    r left the plane without contours until the window changed."""
    import torch

    from bsim.app.widgets.ball import BallPanel
    from bsim.app.widgets.panel import style

    def contour_cells(panel) -> int:
        colour = style("contour").color
        return sum(len(seg.text.strip()) for strip in panel.build(panel.size.width, panel.size.height)
                   for seg in strip if seg.style is not None and seg.style.color == colour)

    def agrees(plane, problem) -> bool:
        request, losses = plane
        for j, i in ((0, 0), (request.ny // 2, request.nx // 3), (request.ny - 1, request.nx - 1)):
            theta = torch.tensor([request.x0 + i * (request.x1 - request.x0) / (request.nx - 1),
                                  request.y0 + j * (request.y1 - request.y0) / (request.ny - 1)],
                                 dtype=problem.X.dtype)
            if abs(float(losses[j, i]) - float(problem.train_loss(theta))) > 1e-9 * (1 + abs(float(losses[j, i]))):
                return False
        return True

    async def script(d: Driver):
        seen = []
        for key in (None, "r", "p"):
            if key:
                await d.press(key)
            await d.steps(300)
            await d.steps(1)                        # a frame that carries the runner's answer
            panel = d.app.query_one(BallPanel)
            plane = d.app.runner.latest.runner.plane
            seen.append((key, d.sim.problem.kind, contour_cells(panel), plane is not None and
                         plane[1] is not None and agrees(plane, d.sim.problem)))
        return seen

    _app, seen = drive(tmp_path, script)
    assert [kind for _key, kind, _cells, _ok in seen][:2] == ["linreg", "linreg"] and seen[2][1] != "linreg"
    for key, kind, cells, ok in seen:
        assert cells > 0 and ok, (key, kind, cells)


def law_marks(text: str) -> set[int]:
    """Columns of the measured points (● trail, ◆ chains) on the ball's law chart, legend line left out."""
    return {col for line in text.splitlines()[1:] if "┤" in line or "│" in line
            for col, ch in enumerate(line) if ch in "●◆"}


@pytest.mark.slow
def test_e_and_a_doubled_batch_show_measured_points_at_two_batch_sizes_on_the_law(tmp_path):
    async def script(d: Driver):
        for _ in range(20):
            await d.steps(50)                      # B = 8: past the burn-in, the trail measured
        await d.press("e")
        await d.press("right_square_bracket")      # B = 16
        for _ in range(24):
            await d.steps(50)
        law = d.app.history.latest.ball_law
        measured = {p.batch_size for p in law.points if p.trail is not None or p.chains is not None}
        assert {8, 16} <= measured
        text = panel_text(d.app, "ball")
        assert len(law_marks(text)) >= 2, text      # a point at each B, apart
        assert "B 8→16" in text and "radius, log" in text
    drive(tmp_path, script)
