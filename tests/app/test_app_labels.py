"""Every label whole at 80x24, 100x30 and 120x36 (issue 18): the loss legend and title, the counters'
B_simple and temperature, the cosine's mean, and the LSTM's note on its two spreads, after ] and e,
after d, and in the LSTM. A label is whole when the panel's line holds only known words: a cut or a
collision ("loss, log (y)hanges", "▒ " with no word, "running average (no") leaves a fragment."""

from __future__ import annotations

import re

import pytest

from bsim.app.widgets.ball import SPREAD_NOTES
from bsim.scenario import find_scenario
from support.app import drive, panel_text

pytestmark = pytest.mark.slow      # nine app renders

SIZES = [(80, 24), (100, 30), (120, 36)]
NUMBER = r"-?[0-9][0-9.,]*(e[+-]?[0-9]+)?[kMGT]?%?"
#: the loss legend's words and the chart's top line (title, then the notes at its right)
LEGEND = {"● batch", "━ train", "╌ test", "▒ chains 10-90%", "▒ K 10-90%"}
TOP_NOTES = r"(\+\d+ B changes|\+\d+B|▲\d+ off chart|▲\d+)"


def inner(line: str) -> str:
    """A panel line without its border."""
    return line.strip().strip("│").strip()


def legend_ok(line: str) -> bool:
    rest = inner(line)
    for word in sorted(LEGEND, key=len, reverse=True):
        rest = rest.replace(word, " ")
    return rest.strip() == ""


def title_ok(line: str) -> bool:
    after = inner(line).split("loss, ", 1)[1]
    after = re.sub(r"^(log|linear) \(y\)", "", after)
    after = re.sub(TOP_NOTES, " ", after)
    return not re.search(r"[A-Za-z(]", after)      # nothing but the chart's dots after the title and notes


async def default_run(d):
    for _ in range(20):
        await d.steps(50)
    await d.press("right_square_bracket")
    for _ in range(6):
        await d.steps(50)
    await d.press("e")
    for _ in range(4):
        await d.steps(50)
    return {pid: panel_text(d.app, pid) for pid in ("counters", "loss", "gradient")}


async def data_panel(d):
    for _ in range(10):
        await d.steps(50)
    await d.press("d")
    for _ in range(4):
        await d.steps(50)
    return {pid: panel_text(d.app, pid) for pid in ("counters", "loss")}


async def lstm_run(d):
    for _ in range(4):
        await d.steps(100)
    return {pid: panel_text(d.app, pid) for pid in ("ball", "loss")}


def lstm():
    sc = find_scenario("lstm")
    sc.problem.n_train, sc.problem.n_test = 128, 32
    sc.chains = 4                # an ensemble from the start (e would make 64 LSTM chains: minutes here)
    return sc


CASES = {"default ] e": (default_run, lambda: find_scenario("default")),
         "d": (data_panel, lambda: find_scenario("default")),
         "lstm": (lstm_run, lstm)}


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    out = {}
    for name, (script, scenario) in CASES.items():
        for size in SIZES:
            _app, out[name, size] = drive(tmp_path_factory.mktemp("labels"), script, sc=scenario(), size=size)
    return out


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", list(CASES))
def test_the_loss_legend_and_title_are_whole(screens, case, size):
    lines = screens[case, size]["loss"].splitlines()
    assert legend_ok(lines[0]), lines[0]
    title = next(line for line in lines if "loss, " in line)
    assert title_ok(title), title


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("case", ["default ] e", "d"])
def test_the_counters_readouts_are_whole(screens, case, size):
    rows = [inner(line) for line in screens[case, size]["counters"].splitlines()]
    b_simple = next(r for r in rows if r.startswith("B_simple"))
    assert re.fullmatch(rf"B_simple\s+(> N = {NUMBER}|{NUMBER})", b_simple), b_simple
    temp = [i for i, r in enumerate(rows) if r.startswith(("temperature", "temp "))]
    if temp:                      # a short panel drops the temperature (and its formula) whole
        assert re.fullmatch(rf"(temperature|temp)\s+{NUMBER}", rows[temp[0]]), rows[temp[0]]
        assert rows[temp[0] + 1] in ("= lr(N/B-1)/(1-m)", "= lr N/(B(1-m))"), rows[temp[0] + 1]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_cosine_and_its_mean_are_whole(screens, size):
    text = screens["default ] e", size]["gradient"]
    line = next(inner(ln) for ln in text.splitlines() if "cos" in ln and "┤" not in ln)
    tail = line[line.index("cos"):]
    assert re.fullmatch(rf"cos(\(g_B, G\))? {NUMBER}(\s+mean {NUMBER}( of \d+ steps)?)?", tail), line


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_lstm_says_what_its_two_spreads_measure_in_whole_words(screens, size):
    lines = [inner(line) for line in screens["lstm", size]["ball"].splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith(("trail:", "around the run")))
    note = " ".join(line for line in lines[start:] if line)
    assert note in SPREAD_NOTES, note            # the ensemble's note, one of its wordings, whole
    legend = lines[0]
    for word in ("━ trail", "━ chains", "rms spread, no θ*", "no θ*"):
        legend = legend.replace(word, " ")
    assert legend.strip() == "", lines[0]
