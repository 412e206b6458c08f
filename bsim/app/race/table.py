"""The race table: one row per lane, every number under a header that says what it is and in what unit.

Columns, most important first where the panel is too narrow for all (the least important
go whole, never cut): the lane, steps, one column per loss target (``bsim.race.targets``: each lane's
cost to it on the race's axis, ★ on the lane first to it), samples, train loss, ball radius, test
loss, seconds, samples/s, accuracy (train, test, and train minus test in points: with --chains K its mean
over the chains ± the standard error, s/sqrt(K)), epochs. The leader (first to the lowest target) is starred, and a
last line says what the lowest target cost it in samples, steps and seconds. Accuracy (the fraction classified right) exists for logistic
regression, softmax and the character LSTM: "-" for least squares and the sine LSTM.
"""

from __future__ import annotations

from bsim.app.format import count, num
from bsim.app.race.history import RaceHistory
from bsim.app.widgets.panel import Panel, fit, text_strip
from bsim.race.targets import lane_label

NONE = "-"


def _pct(v) -> str:
    return NONE if v is None else f"{100 * v:.1f}%"


def _num(v) -> str:
    return NONE if v is None else num(v)


#: (header, rank, value of a LaneFrame): rank 0 columns always show, higher ranks go first when narrow
COLUMNS = (
    ("steps", 0, lambda lane: count(lane.frame.step)),
    ("epochs", 5, lambda lane: num(lane.frame.epoch)),
    ("samples", 0, lambda lane: count(lane.frame.samples)),
    ("seconds", 2, lambda lane: f"{lane.seconds:.2f}" if lane.seconds < 100 else f"{lane.seconds:,.0f}"),
    ("samples/s", 3, lambda lane: _num(lane.samples_per_sec)),
    ("train loss", 0, lambda lane: _num(lane.frame.train_loss)),
    ("test loss", 1, lambda lane: _num(lane.frame.test_loss)),
    ("train acc", 4, lambda lane: _pct(lane.frame.train_acc)),
    ("test acc", 4, lambda lane: _pct(lane.frame.test_acc)),
    ("train−test acc", 4, lambda lane: _gap(lane.frame)),
    ("ball radius", 1, lambda lane: _ball(lane.frame)),
)
#: a landscape's race: no test set, accuracy or ε-ball (the spread around the running average is not what a
#: landscape asks), but which basin the chains are in and how fast they leave the first
LANDSCAPE_DROP = ("test loss", "train acc", "test acc", "train−test acc", "ball radius")


def _start_basin(f) -> str:
    """The share of the chains still in the starting basin, named ("sharp 87%")."""
    land = f.landscape
    if land is None:
        return NONE
    return f"{land.basins[land.start_basin].label} {100 * land.occupancy[land.start_basin]:.0f}%"


def _escape_rate(f) -> str:
    """The measured escape rate (escapes per chain-step in the starting basin) ± its standard error."""
    land = f.landscape
    if land is None or land.escape_rate is None:
        return NONE
    return num(land.escape_rate) + (f"±{num(land.escape_rate_se, 2)}" if land.escape_rate_se is not None else "")


LANDSCAPE_COLUMNS = (
    ("in start basin", 0, lambda lane: _start_basin(lane.frame)),
    ("left", 1, lambda lane: f"{lane.frame.landscape.escaped}" if lane.frame.landscape is not None else NONE),
    ("escape/step meas", 1, lambda lane: _escape_rate(lane.frame)),
)
#: the first column: the lane's colour and batch size
LANE_HEADER = "lane"
GAP = 2


def _gap(f) -> str:
    """Train minus test accuracy in points: the mean over the chains ± its standard error (``chains_gap``),
    or the run's own difference (one chain: no standard error)."""
    g = f.chains_gap
    if g is not None:
        return f"{100 * g.gap:+.1f}" + (f"±{100 * g.se:.1f}" if g.se is not None else "")
    if f.train_acc is None or f.test_acc is None:
        return NONE
    return f"{100 * (f.train_acc - f.test_acc):+.1f}"


def _ball(f) -> str:
    """The measured RMS ball (the LSTM: spread around the running average); "settling" during the burn-in."""
    if f.status == "diverged":
        return "diverged"
    if f.ball_radius is not None:
        return num(f.ball_radius)
    return "settling" if f.ball is not None else NONE


class RaceTable(Panel):
    """Steps, epochs, samples, seconds, samples/s, losses, accuracy and ball radius of every lane.

    Owns nothing but its layout (which columns fit); reads each lane's latest LaneFrame.
    """

    TITLE = "Lanes"

    def __init__(self, history: RaceHistory, frozen_rates: bool = False, **kwargs):
        super().__init__(history, **kwargs)
        self.frozen_rates = frozen_rates     # tests and exports: no wall-clock numbers, so the screen repeats

    def cache_key(self, history: RaceHistory):
        return history.lane_version

    def layout(self, rows: list[list[str]], width: int, columns=COLUMNS) -> list[int]:
        """The columns shown: by rank, dropping the least important (and the later) until they fit."""
        widths = [max(len(columns[i][0]), *(len(r[i + 1]) for r in rows)) for i in range(len(columns))]
        lane_w = max(len(LANE_HEADER), *(len(r[0]) for r in rows))
        kept = list(range(len(columns)))
        while lane_w + sum(widths[i] + GAP for i in kept) > width:
            optional = [i for i in kept if columns[i][1] > 0]
            if not optional:
                break
            kept.remove(max(optional, key=lambda i: (columns[i][1], i)))
        self._widths = (lane_w, widths)
        return kept

    def cell(self, name: str, value, lane) -> str:
        if self.frozen_rates and name in ("seconds", "samples/s"):
            return NONE
        return value(lane)

    @staticmethod
    def rows_for(race) -> int:
        """The panel's height for this RaceFrame: the border, a header, a row per lane, the winner's line."""
        return len(race.lanes) + 3 + (1 if race.targets is not None and race.targets.targets else 0)

    def columns(self, race) -> tuple:
        """COLUMNS with one column per loss target after the steps: the lane's cost to it on the race's axis,
        ★ on the first."""
        targets = race.targets.targets if race is not None and race.targets is not None else ()
        by = race.by if race is not None else "samples"
        base = COLUMNS
        if race is not None and race.lanes and race.lanes[0].frame.landscape is not None:
            base = tuple(c for c in COLUMNS if c[0] not in LANDSCAPE_DROP) + LANDSCAPE_COLUMNS
        cols = tuple((f"to {t.loss:.6g}", 0 if i == len(targets) - 1 else 1, self._reach_cell(t, by))
                     for i, t in enumerate(targets))     # the lowest target stays, the others go when narrow
        return base[:1] + cols + base[1:]       # steps first (the lane trains), then the targets

    def _reach_cell(self, target, by: str):
        def value(lane) -> str:
            r = target.of(lane.key)
            if r is None:
                return NONE
            if by == "time" and self.frozen_rates:
                return "★" if r is target.first else "✓"
            text = f"{r.seconds:.2f}" if by == "time" else num(r.position(by))
            return ("★" if r is target.first else "") + text
        return value

    def winner_line(self, race, width: int) -> list:
        """The lane first to the lowest target reached, and what it cost: samples, steps, seconds."""
        t = next((t for t in reversed(race.targets.targets) if t.first is not None), None)
        if t is None:
            return []
        r, axis = t.first, {"samples": "samples", "steps": "steps", "time": "seconds"}[race.by]
        groups = [(0, [(f"★ first to loss {t.loss:.6g} by {axis}: ", "axis"), (lane_label(r.batch_size), "yellow")]),
                  (1, [(f" at {count(r.samples)} samples", None)]), (2, [(f", {count(r.steps)} steps", None)])]
        if not self.frozen_rates:
            groups.append((3, [(f", {r.seconds:.2f} s", None)]))
        return fit([groups], width)

    def build(self, width: int, height: int):
        lanes = [lane for lane in self.history.order if lane.latest is not None]
        if not lanes:
            return self.message("no lanes yet", width, height)
        race = self.history.latest
        columns = self.columns(race)
        leader = race.targets.leader if race is not None and race.targets is not None else None
        rows = [[("★" if lane.key == leader else "●") + f" {lane.label}"]
                + [self.cell(name, value, lane.latest) for name, _r, value in columns] for lane in lanes]
        kept = self.layout(rows, width, columns)
        lane_w, widths = self._widths
        head = [(LANE_HEADER.ljust(lane_w), "axis")]
        for i in kept:
            head.append((" " * GAP + columns[i][0].rjust(widths[i]), "axis"))
        out = [text_strip(head, width)]
        for lane, row in zip(lanes, rows):
            parts = [(row[0].ljust(lane_w), lane.color)]
            for i in kept:
                text = row[i + 1]
                color = "red" if text == "diverged" else "yellow" if text.startswith("★") else None
                parts.append((" " * GAP + text.rjust(widths[i]), color))
            out.append(text_strip(parts, width))
        if race is not None and race.targets is not None and race.targets.targets:
            out.append(text_strip(self.winner_line(race, width), width))
        return out[:height]
