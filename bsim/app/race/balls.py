"""The lanes' epsilon-balls side by side, on one scale: a shrinking ball is seen to be smaller.

Each lane is drawn by the ball panel's own code (bsim.app.widgets.ball.BallPanel: its
window, radii, readouts and off-chart arrow), as a column: its plane (or, for d > 2, |θ-θ*|
over its steps; for the LSTM, the spread) named with the lane's batch size and lr, its
measured ball and its prediction with the prediction's kind under it. For 2-D problems every plane
has the same θ units per dot, fitted to FIT times the largest ball of any lane once every
lane has one, and held until ``z`` or a change of the lanes; one scale bar says what a cell is.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from textual.strip import Strip

from bsim.app.format import num
from bsim.controls import PlaneRequest
from bsim.app.history import COL
from bsim.app.race.history import RaceHistory
from bsim.app.widgets.ball import BallPanel, PlaneWanted
from bsim.app.widgets.ball_scale import FIT, nice_above, nice_below
from bsim.app.widgets.canvas import Chart, data_range
from bsim.app.widgets.landscape import LandscapePanel, legend_groups
from bsim.app.widgets.landscape_data import picture
from bsim.app.widgets.loss import thin
from bsim.app.widgets.panel import Panel, fit, style, text_strip


#: the prediction's kinds, short, for a narrow lane
SHORT_KINDS = {"reshuffled": "resh.", "reshuffled-approx": "resh.≈", "linearised": "lin."}


class SharedScale:
    """The half-height of every lane's plane, in θ units: fitted once every lane's ball is known.

    Owns only that number. Before every lane has a ball, it follows the iterate farthest from θ*.
    """

    def __init__(self):
        self.radius: float | None = None
        self.fitted = False
        self._runs = -1

    def refit(self) -> None:
        self.radius, self.fitted = None, False

    def update(self, lanes, runs: int) -> None:
        if runs != self._runs:                    # lanes added or removed: fit again
            self._runs = runs
            self.refit()
        if self.fitted:
            return
        frames = [h.latest.frame for h in lanes if h.latest is not None]
        balls = [LaneBall.known_ball(f) for f in frames]
        if frames and all(b is not None for b in balls) and max(balls) > 0:
            self.radius, self.fitted = nice_above(FIT * max(balls)), True
            return
        far = [f.dist_to_opt for f in frames if f.dist_to_opt is not None and math.isfinite(f.dist_to_opt)]
        need = max(far) * 1.15 if far and max(far) > 0 else 1.0
        if self.radius is None or need > self.radius or need < self.radius / 3:
            self.radius = nice_above(need)


class LaneBall(BallPanel):
    """One lane's ball, drawn with BallPanel's code into a column of the race's balls panel (never mounted).

    Owns nothing: reads the lane's FrameBuffer and the panel's SharedScale.
    """

    race_plane = None     # (PlaneRequest, losses) the race runner sent, set by the panel before each column
    wanted = None         # the PlaneRequest this lane's plane was drawn on

    def __init__(self, lane, shared: SharedScale):
        super().__init__(lane.buffer)
        self.lane, self.shared = lane, shared
        self.shared_y: tuple[float, float] | None = None     # the panel's log y range for d > 2 and the LSTM

    def _title(self, title: str) -> None:
        """The lane has no border of its own: its name is written in its picture."""

    @staticmethod
    def known_ball(f) -> float | None:
        """The largest ball known for a frame (BallPanel.ball_size without a panel); None: none yet.

        An unstable lane and a lane at B = N (no noise: a prediction of exactly 0) count as known, of size 0.
        """
        if f.ball is not None and f.ball.stable is False:
            return 0.0
        known = [r for r in (f.ball_radius_theory, f.ball_radius, f.chains_ball_radius)
                 if r is not None and math.isfinite(r) and r >= 0]
        return max(known) if known else None

    def window(self, f, cw: int, ch: int):
        """The shared half-height around this lane's θ*, equal units per dot on both axes."""
        r = self.shared.radius or 1.0
        star = np.asarray(f.theta_star, dtype=float)
        u = 2 * r / (min(2 * cw, 4 * ch) - 1)
        hx, hy = u * (2 * cw - 1) / 2, u * (4 * ch - 1) / 2
        return (float(star[0] - hx), float(star[0] + hx)), (float(star[1] - hy), float(star[1] + hy))

    # ----------------------------------------------------------- text
    def theory(self, f, width: int) -> list:
        """The prediction with its kind (exact, reshuffled, linearised) kept: the kind ranks with the number,
        and is abbreviated (``SHORT_KINDS``) before it would be dropped."""
        def groups(short: bool, minimal: bool = False) -> list:
            out = []
            for rank, g in self.prediction_groups(f):
                if g and g[0][0].strip() == f.ball_theory:
                    rank = 0
                    if short:
                        g = [(" " + SHORT_KINDS.get(f.ball_theory, f.ball_theory), g[0][1])]
                elif minimal and rank > 0:
                    continue
                out.append((rank, g))
            return out
        # the whole kind before its abbreviation; the iid prediction and the lr limit's fraction go first
        return fit([groups(False), groups(False, minimal=True), groups(True), groups(True, minimal=True)], width)

    def column(self, width: int, height: int) -> list[Strip]:
        """The lane's column: its picture, named in its top-left corner, then its measured ball and the
        prediction with its kind (a short panel leaves out the prediction first, then the measured ball)."""
        f = self.history.latest
        if f is None:
            return [text_strip([(self.lane.label, self.lane.color), (" starting…", "axis")], width)]
        texts = [self.measured_line(f, width), self.theory(f, width)]
        if f.dist_to_opt is None:
            texts = self.spread_texts(f, width)
        texts = texts[:self.text_rows(height)]
        rows = height - len(texts)
        if f.dist_to_opt is None:
            chart = self.spread_chart(f, width, rows)
        elif len(f.theta) == 2 and f.theta_star is not None:
            chart = self.plane(f, width, rows)
        else:
            chart = self.distance_chart(f, width, rows)
        if isinstance(chart, Chart):
            self.name_lane(chart, f)
            chart = chart.strips()
        chart = chart + [Strip.blank(width)] * (rows - len(chart))
        return (chart + [text_strip(parts, width) for parts in texts])[:height]

    def name_lane(self, chart: Chart, f) -> None:
        """The lane's batch size in its colour at the top left of its picture, and its lr where it fits."""
        name, lr = self.lane.label, f" lr {num(f.lr or f.next_lr)}"
        if self.lane.key != self.lane.batch_size:     # a lane by schedule: the B in force too
            lr = f" B={f.batch_size or f.next_batch_size}" + lr
        chart.label(0, 0, name, self.lane.color)
        if len(name) + len(lr) <= chart.canvas.w:
            chart.label(0, len(name), lr, "axis")

    @staticmethod
    def text_rows(height: int) -> int:
        """How many readout lines a column of ``height`` keeps under its picture (the picture keeps 3 rows)."""
        return max(min(2, height - 3), 0)

    # ----------------------------------------------------------- d = 2: the plane
    def plane(self, f, width: int, rows: int) -> Chart:
        """The plane as BallPanel draws it (contours when the runner sent them, trail, cloud, rings, step, θ*)."""
        xlim, ylim = self.window(f, width, rows)
        chart = Chart(width, rows, xlim=xlim, ylim=ylim, xaxis=False, yaxis=False)
        self.wanted = PlaneRequest(xlim[0], xlim[1], ylim[0], ylim[1], 2 * width, 4 * rows)
        plane = self.race_plane
        if plane is not None and plane[0] == self.wanted and plane[1] is not None:
            self.draw_contours(chart, plane[1])
        self.draw_marks(chart, f, xlim, ylim)         # no previous ring: a lane's setting never changes
        return chart

    def off_chart(self, chart: Chart, xlim, ylim, f) -> None:
        """BallPanel's arrow toward θ at the edge, with a label short enough for a lane's column."""
        x, y = f.theta
        if not (math.isfinite(x) and math.isfinite(y)) or (xlim[0] <= x <= xlim[1] and ylim[0] <= y <= ylim[1]):
            return
        super().off_chart(chart, xlim, ylim, f)
        chart.canvas.text = {k: v for k, v in chart.canvas.text.items() if k[0] != chart.canvas.h - 1}
        far = num(f.dist_to_opt)
        label = next((t for t in (f"θ off: {far}", f"off {far}", "off") if len(t) <= chart.canvas.w), "")
        chart.label(chart.canvas.h - 1, 0, label, "yellow")

    # ----------------------------------------------------------- d > 2 and the LSTM: a chart over steps
    def distance_chart(self, f, width: int, rows: int) -> Chart | list[Strip]:
        """|θ-θ*| over the lane's steps, with the predicted and measured radius: BallPanel's d > 2 chart,
        on the y range the panel shares across lanes (``self.shared_y``)."""
        data = self.history.trace.array()
        if len(data) == 0:
            return self.message(f"{self.lane.label}: no step yet", width, rows)
        return self.draw_distance(data, f, width, rows, ylim=self.shared_y or (1e-3, 1.0), xaxis=False)

    def spread_chart(self, f, width: int, rows: int) -> Chart | list[Strip]:
        """The spread around the running average (no θ*): BallPanel's LSTM chart, on the shared y range."""
        data = self.history.trace.array()
        series = data[:, [COL["ball_radius"], COL["chains_ball_radius"]]] if len(data) else data
        if len(data) == 0 or not np.isfinite(series).any():
            ball = f.ball
            left = f" ({num(ball.burn_in_left)} steps)" if ball is not None and ball.burn_in_left else ""
            return self.message(f"{self.lane.label}: settling{left}", width, rows)
        rows_ = thin(data, 2 * width)
        step = rows_[:, 0]
        chart = Chart(width, rows, xlim=(float(step[0]), float(max(step[-1], step[0] + 1))),
                      ylim=self.shared_y or (1e-3, 1.0), ylog=True, xaxis=False)
        chart.line(step, rows_[:, COL["ball_radius"]], "green")
        chart.line(step, rows_[:, COL["chains_ball_radius"]], "purple")
        chart.label(chart.canvas.h - 1, -1, "step")
        return chart

    def spread_texts(self, f, width: int) -> list:
        ball = f.ball
        meas = ball.radius_measured if ball is not None else None
        return [fit([[(0, [("spread ", "axis"), (num(meas), "green")])]
                     + ([(1, [(f" K={f.chains} ", "axis"), (num(f.chains_ball_radius), "purple")])]
                        if f.chains and f.chains > 1 else [])], width),
                fit([[(1, [("no θ*: around the running mean", "axis")])], [(1, [("no θ*", "axis")])]], width)]


class LaneLandscape(LandscapePanel):
    """One lane's landscape, drawn with LandscapePanel's code into a column of the race's panel (never mounted):
    its first line names the lane (its batch size, in its colour) and its basins' occupancy now."""

    def __init__(self, lane):
        super().__init__(lane.buffer)
        self.lane = lane

    def _title(self, title: str) -> None:
        """The lane has no border of its own."""

    OCCUPANCY_FIRST = True

    def first_line(self, pic, r, width: int, short: bool) -> list:
        name = f"{self.lane.label} "
        return [(name, self.lane.color)] + super().first_line(pic, r, width - len(name), short)



def side_by_side(top: Strip, columns: list[list[Strip]], width: int, height: int) -> list[Strip]:
    """``top``, then the lanes' columns row by row, a grey bar between them: the panel's ``height`` lines."""
    sep = Strip([Segment("│", style("grey"))], 1)
    out = [top]
    for y in range(height - 1):
        parts = []
        for i, col in enumerate(columns):
            if i:
                parts.append(sep)
            parts.append(col[y])
        out.append(Strip.join(parts).adjust_cell_length(width))
    return out[:height]

class RaceBallsPanel(Panel):
    """Every lane's epsilon-ball in a column of its own, all on one scale.

    Owns: the shared scale (SharedScale) and one LaneBall drawer per lane, and each lane's
    column as last drawn (redrawn only when that lane took a step, or the size or scale changed).
    Reads: the RaceHistory.
    """

    TITLE = "ε-balls, one scale"

    def __init__(self, history: RaceHistory, **kwargs):
        super().__init__(history, **kwargs)
        self.shared = SharedScale()
        self._drawers: dict[int, LaneBall] = {}
        self._columns: dict[int, tuple[tuple, list[Strip]]] = {}
        self._refits = 0
        self._asked = None        # the last PlaneRequest posted
        self._landscapes: dict[int, LaneLandscape] = {}

    def cache_key(self, history):
        return (history.lane_version, self._refits)

    def refit(self) -> str:
        """z: fit the shared scale again to the lanes' balls now."""
        self.shared.refit()
        self._refits += 1
        self.show(self.history)
        return "ε-balls: the shared scale fitted again to the largest ball"

    def drawer(self, lane) -> LaneBall:
        d = self._drawers.get(lane.key)
        if d is None or d.lane is not lane:
            d = self._drawers[lane.key] = LaneBall(lane, self.shared)
        return d

    def build(self, width: int, height: int):
        lanes = [lane for lane in self.history.order if lane.latest is not None]
        if not lanes:
            return self.message("no lanes yet", width, height)
        frames = [lane.latest.frame for lane in lanes]
        if all(picture(f) is not None for f in frames):
            return self.landscapes(lanes, width, height)
        planes = all(len(f.theta) == 2 and f.theta_star is not None for f in frames)
        spread = all(f.dist_to_opt is None for f in frames)
        self._title("Spread of each lane (no θ*)" if spread else self.TITLE)
        n = len(lanes)
        col_w = (width - (n - 1)) // n
        if col_w < 8:
            return self.message(f"{n} lanes need {9 * n - 1} columns: widen the terminal", width, height)
        self.shared.update(lanes, self.history.runs)
        shared_y = None if planes else self.shared_range(lanes, spread)
        top = text_strip(self.top_line(lanes, planes, spread, width, col_w, height - 1), width)
        columns = []
        rs = self.history.latest.runner if self.history.latest is not None else None
        plane = rs.plane if rs is not None else None       # the loss on the planes' grid, when the runner sent it
        for lane in lanes:
            d = self.drawer(lane)
            d.shared_y, d.race_plane, d.wanted = shared_y, plane, None
            key = (lane.version, col_w, height - 1, self.shared.radius, shared_y, self._refits,
                   plane[0] if plane is not None else None)
            cached = self._columns.get(lane.key)
            if cached is None or cached[0] != key:
                lines = [s.adjust_cell_length(col_w) for s in d.column(col_w, height - 1)]
                lines += [Strip.blank(col_w)] * (height - 1 - len(lines))
                cached = self._columns[lane.key] = (key, lines)
            columns.append(cached[1])
        self.ask_for_contours([self.drawer(lane).wanted for lane in lanes], plane)
        self._columns = {b: c for b, c in self._columns.items() if b in self.history.lanes}
        self._drawers = {b: d for b, d in self._drawers.items() if b in self.history.lanes}
        return side_by_side(top, columns, width, height)

    def landscapes(self, lanes, width: int, height: int) -> list[Strip]:
        """The landscape problems: each lane's landscape with its chains, the occupancy of its basins over its
        steps and its escape rate (bsim.app.widgets.landscape, one drawer per lane), side by side."""
        self._title("Landscape of each lane")
        n = len(lanes)
        col_w = (width - (n - 1)) // n
        if col_w < 12:
            return self.message(f"{n} lanes need {13 * n - 1} columns: widen the terminal", width, height)
        pic = picture(lanes[0].latest.frame)
        columns = []
        for lane in lanes:
            d = self._landscapes.get(lane.key)
            if d is None or d.lane is not lane:
                d = self._landscapes[lane.key] = LaneLandscape(lane)
            key = ("landscape", lane.version, col_w, height - 1)
            cached = self._columns.get(lane.key)
            if cached is None or cached[0] != key:
                lines = [s.adjust_cell_length(col_w) for s in d.build(col_w, height - 1)]
                lines += [Strip.blank(col_w)] * (height - 1 - len(lines))
                cached = self._columns[lane.key] = (key, lines)
            columns.append(cached[1])
        self._columns = {b: c for b, c in self._columns.items() if b in self.history.lanes}
        self._landscapes = {b: d for b, d in self._landscapes.items() if b in self.history.lanes}
        return side_by_side(text_strip(fit([legend_groups(pic)], width), width), columns, width, height)

    def ask_for_contours(self, wanted: list, plane) -> None:
        """Ask the runner (through the app) for the loss on the planes' grid, once per grid: the lanes' columns
        have one width, one θ* and one scale, so they want the same one."""
        request = next((w for w in wanted if w is not None), None)
        if request is None or (plane is not None and plane[0] == request) or request == self._asked:
            return
        self._asked = request
        if self.is_attached:
            self.app.post_message(PlaneWanted(request))   # the app hands it to the runner

    def shared_range(self, lanes, spread: bool):
        """One log y range over every lane's |θ-θ*| (or spread), radii included."""
        series = []
        for lane in lanes:
            data = lane.buffer.trace.array()
            f = lane.latest.frame
            if spread:
                series += [data[:, COL["ball_radius"]], data[:, COL["chains_ball_radius"]]]
            else:
                series += [data[:, COL["dist_to_opt"]], data[:, COL["chains_ball_radius"]]]
                series += [[r] for r in (f.ball_radius, f.ball_radius_theory) if r]
        return data_range(*series, log=True)

    def top_line(self, lanes, planes: bool, spread: bool, width: int, col_w: int, rows: int) -> list:
        """The legend, and for planes the scale bar of the one scale every lane is drawn on."""
        if spread:
            chains = [(1, [("━ chains ", "purple")])] if any((lane.latest.frame.chains or 1) > 1 for lane in lanes) else []
            return fit([[(0, [("━ spread ", "green")])] + chains
                        + [(1, [("one log scale, over each lane's steps", "axis")])]], width)
        legend = [(0, [("+θ* ", "white")]), (0, [("· trail ", "blue")]), (0, [("○ pred ", "orange")]),
                  (0, [("○ meas ", "green")])]
        if any(lane.latest.frame.chains and lane.latest.frame.chains > 1 for lane in lanes):
            legend.append((2, [("∴ chains ", "purple")]))
        if not planes:
            return fit([[(0, [("━ |θ-θ*| ", "blue")]), (0, [("┄ pred ", "orange")]), (0, [("┄ meas ", "green")]),
                         (1, [("one log scale", "axis")])]], width)
        r = self.shared.radius or 1.0
        chart_rows = max(rows - LaneBall.text_rows(rows), 1)
        u = 2 * r / (min(2 * col_w, 4 * chart_rows) - 1)      # θ units per dot, as LaneBall.window
        cell = 2 * u
        bar = self.bar(cell, col_w)
        return fit([legend + [(1, [("  one scale: ", "axis")] + bar + [(f" (1 cell = {num(cell)} in θ)", "axis")])],
                    legend + [(1, [("  scale ", "axis")] + bar)]], width)

    @staticmethod
    def bar(cell: float, col_w: int) -> list:
        """A scale bar of a round length (BallPanel's nice_below), at most 8 cells."""
        length = nice_below(cell * min(8, max(col_w // 4, 2)))
        cells = max(int(round(length / cell)), 1)
        text = "├" + "─" * max(cells - 2, 0) + "┤" if cells >= 2 else "│"
        return [(text, "white"), (f" {num(length)}", "axis")]
