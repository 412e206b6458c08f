"""The ``[schedule]`` table of a scenario: batch size and lr schedules in epochs, or an adaptive batch size.

Registered with ``bsim.scenario`` (``register_table``), so that every load of a file checks it; an
error names the file, the line and the key. The table (every key optional)::

    [schedule]
    batch_size = { every_epochs = 5, factor = 2, max = 512 }   # B x factor every 5 epochs, up to max
    lr = { every_epochs = 5, factor = 0.5, min = 0.001, warmup_epochs = 1, warmup_from = 0.1 }
    # or an adaptive batch size (Byrd, Chin, Nocedal & Wu 2012), instead of the batch_size table:
    # batch_size = "adaptive"
    # adaptive = { test = "norm", theta = 0.5, factor = 2, max = 1024, window = 16 }

    [schedule.lane.grow-batch]   # a named schedule: `bsim race SCENARIO --lanes decay-lr,grow-batch`
    batch_size = { every_epochs = 10, factor = 4 }

What the scenario's other settings must agree with (max below the starting B, an adaptive start of
B = 1) is checked when a run is built (``bsim.schedule.check_schedule``), where the start is known.
"""

from __future__ import annotations

import math
from typing import Any

from bsim.errors import BsimInputError, quote
from bsim.scenario import register_table
from bsim.tomlcheck import Locator, Rule, one_of

#: the adaptive batch size's tests: the norm test (Byrd et al. 2012), the inner-product test
#: (Bollapragada, Byrd & Nocedal 2018)
TESTS = ("norm", "inner_product")
#: what `batch_size` may be instead of a table
ADAPTIVE = "adaptive"
#: the most named lanes a scenario's schedule may hold (a race has at most 8 lanes)
MAX_LANE_SCHEDULES = 8


def _pos(v) -> bool:
    return math.isfinite(v) and v > 0


_EVERY: Rule = ((int, float), _pos, "a finite number of epochs > 0")
_FACTOR: Rule = ((int, float), _pos, "a finite number > 0 (the multiplier at each change)")
BATCH_RULES: dict[str, Rule] = {
    "every_epochs": _EVERY,
    "factor": _FACTOR,
    "max": ((int,), lambda v: v >= 1, "an integer >= 1 (the largest batch size; default N)"),
}
LR_RULES: dict[str, Rule] = {
    "every_epochs": _EVERY,
    "factor": _FACTOR,
    "min": ((int, float), _pos, "a finite number > 0 (the smallest lr a decay reaches)"),
    "max": ((int, float), _pos, "a finite number > 0 (the largest lr a growth reaches)"),
    "warmup_epochs": ((int, float), _pos, "a finite number of epochs > 0 (lr rises linearly to its value)"),
    "warmup_from": ((int, float), lambda v: 0 < v <= 1, "a fraction in (0, 1] (the warm-up's first lr / lr)"),
}
ADAPTIVE_RULES: dict[str, Rule] = {
    "test": one_of(TESTS),
    "theta": ((int, float), _pos, "a finite number > 0 (grow B when the noise exceeds theta^2 |g_B|^2)"),
    "factor": ((int, float), lambda v: math.isfinite(v) and v > 1, "a finite number > 1 (B's growth at each test failed)"),
    "max": BATCH_RULES["max"],
    "window": ((int,), lambda v: 1 <= v <= 10_000, "an integer from 1 to 10000 (the steps the test averages)"),
}
#: the keys of one schedule (the top of [schedule], or a lane's)
SCHEDULE_KEYS = ("batch_size", "lr", "adaptive")


def _where(loc: Locator, fname: str, table: str, key: str, sub: str | None = None) -> str:
    """``file:line: table.key[.sub]``: the line of ``sub`` in a ``[table.key]`` table, else of ``key = {...}``."""
    line = ((loc.line_of(f"{table}.{key}", sub) if sub else None) or loc.line_of(table, key)
            or loc.line_of_table(f"{table}.{key}"))
    name = f"{table}.{key}" + (f".{sub}" if sub else "")
    return f"{fname}:{line}: {name}" if line else f"{fname}: {name}"


def _sub(raw: Any, rules: dict[str, Rule], fname: str, loc: Locator, table: str, key: str) -> dict:
    """A sub-table (inline ``key = { ... }`` or ``[table.key]``), checked against ``rules``."""
    if not isinstance(raw, dict):
        raise BsimInputError(f"{_where(loc, fname, table, key)}: got {quote(raw)}, expected a table such as "
                             f"{{ every_epochs = 5, factor = 2 }}")
    sub = {}
    for name, value in raw.items():
        if name not in rules:
            shown = name if name.isidentifier() else quote(name)
            raise BsimInputError(f"{_where(loc, fname, table, key)}: {shown}: got an unknown key, expected one of "
                                 f"{', '.join(rules)}")
        types, check, expected = rules[name]
        ok = isinstance(value, types) and not isinstance(value, bool)
        if not ok or (check is not None and not check(value)):
            raise BsimInputError(f"{_where(loc, fname, table, key, name)}: got {quote(value)}, expected {expected}")
        sub[name] = float(value) if float in types else value
    if "factor" in rules and "every_epochs" in sub and "factor" not in sub:
        raise BsimInputError(f"{_where(loc, fname, table, key)}: every_epochs without factor; expected factor "
                             f"= F as well")
    if "every_epochs" in rules and "factor" in sub and "every_epochs" not in sub:
        raise BsimInputError(f"{_where(loc, fname, table, key)}: factor without every_epochs; expected "
                             f"every_epochs = E as well")
    return sub


def check_one(raw: dict, fname: str, loc: Locator, table: str) -> dict[str, Any]:
    """One schedule: ``batch_size`` (a table or "adaptive"), ``lr``, ``adaptive``."""
    for key in raw:
        if key not in SCHEDULE_KEYS:
            shown = key if key.isidentifier() else quote(key)
            raise BsimInputError(f"{_where(loc, fname, table, shown)}: got an unknown key, expected one of "
                                 f"{', '.join(SCHEDULE_KEYS)}")
    out: dict[str, Any] = {}
    bs = raw.get("batch_size")
    if isinstance(bs, str):
        if bs != ADAPTIVE:
            raise BsimInputError(f"{_where(loc, fname, table, 'batch_size')}: got {quote(bs)}, expected "
                                 f"\"adaptive\" or a table {{ every_epochs, factor, max }}")
        out["batch_size"] = ADAPTIVE
    elif bs is not None:
        out["batch_size"] = _sub(bs, BATCH_RULES, fname, loc, table, "batch_size")
    if "lr" in raw:
        out["lr"] = _sub(raw["lr"], LR_RULES, fname, loc, table, "lr")
    if "adaptive" in raw:
        if out.get("batch_size") != ADAPTIVE:
            raise BsimInputError(f"{_where(loc, fname, table, 'adaptive')}: without batch_size = \"adaptive\"; "
                                 f"expected both or neither")
        out["adaptive"] = _sub(raw["adaptive"], ADAPTIVE_RULES, fname, loc, table, "adaptive")
    return out


def check_schedule_table(raw: dict, fname: str, loc: Locator) -> dict[str, Any]:
    """The [schedule] table: its own schedule and its named lanes (``lane``), each checked key by key."""
    table = check_one({k: v for k, v in raw.items() if k != "lane"}, fname, loc, "schedule")
    if "lane" not in raw:
        return table
    lanes = raw["lane"]
    where = _where(loc, fname, "schedule", "lane")
    if not isinstance(lanes, dict) or not lanes:
        raise BsimInputError(f"{where}: got {quote(lanes)}, expected tables [schedule.lane.NAME] "
                             f"(the schedules of bsim race --lanes)")
    if len(lanes) > MAX_LANE_SCHEDULES:
        raise BsimInputError(f"{where}: {len(lanes)} lanes; expected at most {MAX_LANE_SCHEDULES}")
    table["lane"] = {}
    for name, lane in lanes.items():
        if not lane_name_ok(name):
            raise BsimInputError(f"{where}: the name {quote(name)}; expected 1 to 24 letters, digits, - and _")
        if not isinstance(lane, dict):
            raise BsimInputError(f"{_where(loc, fname, 'schedule.lane', name)}: got {quote(lane)}, expected a table")
        table["lane"][name] = check_one(lane, fname, loc, f"schedule.lane.{name}")
    return table


def lane_name_ok(name: str) -> bool:
    """A lane's name: 1 to 24 ASCII letters, digits, - and _ (it is a CSV cell and a command-line word)."""
    return 0 < len(name) <= 24 and name.isascii() and all(c.isalnum() or c in "-_" for c in name)


register_table("schedule", check_schedule_table)
