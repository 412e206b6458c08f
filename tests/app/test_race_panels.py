"""The race screen's panels on real races: one scale for every ball, lane colours, the table's columns,
the loss chart's axis, and panels redrawn only for what changed."""

from __future__ import annotations

import pytest

from bsim.app.format import num
from bsim.app.race.balls import LaneBall, RaceBallsPanel
from bsim.app.race.history import AXIS_UNITS, LANE_COLORS, RaceHistory
from bsim.app.race.loss import RaceLossPanel
from bsim.app.race.table import COLUMNS, RaceTable
from bsim.app.widgets.panel import style
from bsim.race.race import Race
from bsim.scenario import find_scenario
from support.race import drive_race, race_of


def text(strips) -> list[str]:
    return ["".join(seg.text for seg in strip) for strip in strips]


def stepped(race: Race, lane_steps: int, every: int = 50) -> RaceHistory:
    """A RaceHistory fed a RaceFrame every ``every`` lane steps, as the screen would be."""
    history = RaceHistory()
    for _ in range(lane_steps // every):
        for _ in range(every):
            race.step()
        history.add(race.frame(timing=False))
    return history


def test_every_lane_s_plane_has_the_same_units_per_cell_and_the_largest_ball_is_readable():
    race = race_of("default", (8, 64, 256))
    history = stepped(race, 1500)
    panel = RaceBallsPanel(history)
    lines = text(panel.build(120, 12))
    lanes = history.order
    panel.shared.update(lanes, history.runs)
    windows = [LaneBall(lane, panel.shared).window(lane.latest.frame, 38, 7) for lane in lanes]
    spans = {(round(x[1] - x[0], 12), round(y[1] - y[0], 12)) for x, y in windows}
    assert len(spans) == 1                                   # one scale: the same θ units per dot in every lane
    half_height = next(iter(spans))[1] / 2
    preds = [lane.latest.frame.ball_radius_theory for lane in lanes]
    assert 0.2 <= max(preds) / half_height <= 0.5            # the largest ball fills a fair part of its plane
    assert preds[0] / preds[-1] > 5                          # ...and B=256's is drawn that much smaller
    assert "one scale" in lines[0] and "1 cell = " in lines[0]
    assert all(f"B={b}" in "\n".join(lines) for b in (8, 64, 256))


def test_a_lane_at_b_equal_to_n_has_no_ball_and_the_scale_still_fits_the_others():
    race = race_of("default", (8, 512))                       # N = 512: the second lane has no noise
    history = stepped(race, 300)
    assert history.order[1].latest.frame.ball_radius_theory == 0
    panel = RaceBallsPanel(history)
    panel.build(100, 12)
    assert panel.shared.fitted
    assert panel.shared.radius >= 2 * history.order[0].latest.frame.ball_radius_theory


def test_a_lane_keeps_its_colour_when_another_goes_and_a_new_lane_takes_the_free_one():
    race = race_of("default", (8, 64, 512))
    history = stepped(race, 100)
    before = {b: lane.color for b, lane in history.lanes.items()}
    assert list(before.values()) == list(LANE_COLORS[:3])
    race.remove_lane(64)
    race.add_lane(16)
    history.add(race.frame(timing=False))
    after = {b: lane.color for b, lane in history.lanes.items()}
    assert list(after) == [8, 512, 16]
    assert after[8] == before[8] and after[512] == before[512] and after[16] == before[64]


@pytest.mark.parametrize("name", ["default", "logreg"])
def test_the_table_says_what_each_number_is_and_accuracy_only_for_logistic_regression(name):
    race = race_of(name, (8, 64))
    history = stepped(race, 200)
    table = RaceTable(history)
    lines = text(table.build(160, 5))
    header = lines[0].split()
    targets = len(history.latest.targets.targets)
    assert header[:2] == ["lane", "steps"] and header[2:2 + 2 * targets:2] == ["to"] * targets   # then the targets
    assert "samples/s" in header and "radius" in header
    for lane, line in zip(history.order, lines[1:]):
        f = lane.latest.frame
        cells = line.split()
        assert cells[0] in "●★" and cells[1:3] == [f"B={lane.batch_size}", f"{f.step:,}"]
        assert num(f.train_loss) in cells and num(f.test_loss) in cells
        if name == "logreg":
            assert f"{100 * f.train_acc:.1f}%" in cells and f"{100 * f.test_acc:.1f}%" in cells
        else:
            assert f.train_acc is None and cells.count("-") >= 2    # accuracy: "-" for least squares


def test_a_narrow_table_drops_whole_columns_least_important_first():
    race = race_of("default", (8, 64))
    history = stepped(race, 200)
    wide = text(RaceTable(history).build(160, 3))[0]
    narrow = text(RaceTable(history).build(60, 3))[0]
    for header, rank, _value in COLUMNS:
        assert header in wide
        if rank == 0:
            assert header in narrow                       # the essential columns stay
    gone = [h for h, _r, _v in COLUMNS if h not in narrow]
    assert gone and all(next(r for h2, r, _v in COLUMNS if h2 == h) > 0 for h in gone)
    assert len(narrow.rstrip()) <= 60


@pytest.mark.parametrize("by", ["samples", "steps"])
def test_the_loss_chart_is_against_the_race_axis_with_its_unit_and_a_legend_by_batch_size(by):
    race = race_of("default", (64, 8, 512), by=by)
    history = stepped(race, 300)
    panel = RaceLossPanel(history)
    lines = text(panel.build(100, 14))
    assert [w for w in lines[0].split() if w.startswith("B=")] == ["B=8", "B=64", "B=512"]
    assert f"{AXIS_UNITS[by]} · whole race (w)" in "\n".join(lines)
    right_end = max(lane.latest.budget[by] for lane in history.order)
    assert lines[-1].split()[-1] == num(right_end, 2)     # the x axis ends at the lane furthest along
    assert panel.whole_run                                  # the whole race by default: from its start
    panel.toggle_window()
    assert not panel.whole_run


def test_more_than_two_parameters_and_the_lstm_draw_a_chart_per_lane():
    sc = find_scenario("default")
    sc.problem.dim, sc.problem.n_train = 5, 512
    history = stepped(Race(sc, [8, 128]), 400)
    lines = "\n".join(text(RaceBallsPanel(history).build(100, 12)))
    assert "|θ-θ*|" in lines and "one log scale" in lines and "B=8" in lines and "B=128" in lines
    assert "pred" in lines and "exact" in lines or "reshuffled" in lines
    lstm = race_of("lstm", (8, 64), n_train=None)
    history = stepped(lstm, 100)
    panel = RaceBallsPanel(history)
    lines = "\n".join(text(panel.build(100, 12)))
    assert panel.border_title.startswith("Spread") and "no θ*" in lines and "B=64" in lines


def test_panels_are_redrawn_only_for_what_changed(tmp_path, monkeypatch):
    """A frame without a step redraws no chart; a step of one lane redraws that lane's ball only."""
    drawn = []
    column = LaneBall.column

    def counted(self, width, height):
        drawn.append(self.lane.batch_size)
        return column(self, width, height)
    monkeypatch.setattr(LaneBall, "column", counted)

    async def script(d):
        await d.steps(300)
        loss = d.app.query_one(RaceLossPanel)
        key = loss._key
        drawn.clear()
        await d.press("greater_than_sign")            # a frame with the same steps: nothing to redraw
        same = (loss._key == key, list(drawn))
        d.app.runner.advance(1)                       # one lane step: that lane's column only
        await d.pilot.pause()
        return same, list(drawn)
    _app, (same, one) = drive_race(tmp_path, script)
    assert same == (True, [])
    assert len(one) == 1


def test_a_lane_s_trace_keeps_the_rows_the_main_app_s_trace_keeps():
    """The numpy-backed trace thins as bsim.app.history.Trace does (every other row once full)."""
    import numpy as np

    from bsim.app.history import Trace
    from bsim.app.race.history import ArrayTrace
    reference, trace = Trace(("x", "y"), cap=64), ArrayTrace(("x", "y"), cap=64)
    for i in range(1000):
        reference.append((float(i), 2.0 * i))
        trace.append((float(i), 2.0 * i))
        assert np.array_equal(reference.array(), trace.array()), i
    assert trace.stride == reference.stride > 1


def test_the_lanes_planes_show_the_loss_contours_the_runner_computed(tmp_path):
    """The panel asks once for the loss on its planes' grid (one width, one θ*, one scale for every lane); the
    runner computes it on the lanes' shared training set; every lane's plane then draws its contour dots."""
    import numpy as np

    async def script(d):
        await d.steps(600)
        await d.press("z")                     # a redraw after the runner answered the request
        panel = d.app.query_one(RaceBallsPanel)
        wanted = {panel.drawer(lane).wanted for lane in panel.history.order} - {None}
        plane = d.app.runner.latest.runner.plane
        strips = panel.build(panel.size.width, panel.size.height)
        contour = style("contour").color
        contour_cells = sum(len(seg.text.strip()) for strip in strips for seg in strip
                            if seg.style is not None and seg.style.color == contour)
        return wanted, plane, contour_cells

    race = race_of("default", (8, 64))
    _app, (wanted, plane, contour_cells) = drive_race(tmp_path, script, race=race)
    assert plane is not None and wanted == {plane[0]}
    request, losses = plane
    assert losses.shape == (request.ny, request.nx)
    # the loss at a grid point against L(θ) = (1/2N) |X θ - y|^2 (+ l2/2 |θ|^2) computed here in NumPy
    problem = race.lanes[0].sim.problem
    X, y = problem.X.double().numpy(), problem.y.double().numpy()
    for j, i in ((0, 0), (request.ny // 2, request.nx // 3), (request.ny - 1, request.nx - 1)):
        theta = np.array([request.x0 + i * (request.x1 - request.x0) / (request.nx - 1),
                          request.y0 + j * (request.y1 - request.y0) / (request.ny - 1)])
        expected = 0.5 * np.mean((X @ theta - y) ** 2) + 0.5 * problem.l2 * theta @ theta
        assert losses[j, i] == pytest.approx(expected, rel=1e-9)
    assert contour_cells > 20
