"""The ``[race]`` table of a race recording (written by ``bsim.race.recording``), checked key by key.

The lanes' batch sizes, the lockstep axis, the lr rule, the chains, and where
each lane ended (its step, whether it had diverged, its train loss and the
sha256 of its parameters). Registered with ``bsim.scenario``
(``register_table``), so that every load of a file checks it; an error names
the file, the line and the key.
"""

from __future__ import annotations

from typing import Any

from bsim.errors import BsimInputError, quote
from bsim.race.frame import AXES, MAX_LANES
from bsim.scenario import LR_SCALINGS, TOP_RULES, register_table
from bsim.schedule.schema import lane_name_ok
from bsim.tomlcheck import SHA256, Locator, Rule, check_table, one_of, plain_int, plain_num, where

#: the most steps a race recording's lane may ask a replay for (as a recording's final_tick: 10^9 past its last
#: event, and a race has no timeline)
MAX_LANE_STEPS = 10**9

RULES: dict[str, Rule] = {
    "batch_sizes": ((list,), lambda v: all(plain_int(x) and x >= 1 for x in v) and 0 < len(v) <= MAX_LANES,
                    f"a list of 1 to {MAX_LANES} different integers >= 1"),
    "by": one_of(AXES),
    "lr_rule": one_of(LR_SCALINGS),
    "chains": TOP_RULES["chains"],
    "lane_steps": ((list,), lambda v: all(plain_int(x) and 0 <= x <= MAX_LANE_STEPS for x in v),
                   "a list of step numbers from 0 to 10^9"),
    "position": ((int, float), lambda v: 0 <= v < float("inf"), "a finite number >= 0 (the lockstep's front)"),
    "lane_diverged": ((list,), lambda v: all(isinstance(x, bool) for x in v), "a list of true or false, one per lane"),
    "lane_train_loss": ((list,), lambda v: all(plain_num(x) for x in v), "a list of numbers, one per lane"),
    "lane_theta_sha256": ((list,), lambda v: all(isinstance(x, str) and SHA256.match(x) for x in v),
                          "a list of sha256 strings (64 lowercase hex digits), one per lane"),
    # lanes that differ by schedule (bsim race --lanes): each lane's [schedule.lane.NAME]
    "lane_names": ((list,), lambda v: all(isinstance(x, str) and (x == "" or lane_name_ok(x)) for x in v)
                   and len({x for x in v if x}) == len([x for x in v if x]),
                   "a list of different lane names (letters, digits, - and _; \"\" for a lane of a batch size), "
                   "one per lane"),
}
#: what a race recording always has (the rest is its check, written at stop)
REQUIRED = ("batch_sizes", "by", "lr_rule", "chains", "lane_steps")
#: the keys that hold one entry per lane
PER_LANE = ("lane_steps", "lane_diverged", "lane_train_loss", "lane_theta_sha256", "lane_names")


def check_race_table(raw: dict, fname: str, loc: Locator) -> dict[str, Any]:
    """The [race] table: every key checked, the required ones present, one entry per lane."""
    table = check_table(raw, RULES, fname, loc, "race")
    if missing := [k for k in REQUIRED if k not in table]:
        raise BsimInputError(f"{loc.where_table(fname, 'race')}: [race] has no {missing[0]!r}; expected "
                             f"{', '.join(REQUIRED)} (a race recording written by bsim race --record)")
    if "lane_names" not in table and len(set(table["batch_sizes"])) != len(table["batch_sizes"]):
        raise BsimInputError(f"{where(fname, loc, 'race', 'batch_sizes')}: got {quote(table['batch_sizes'])}, "
                             f"expected a list of 1 to {MAX_LANES} different integers >= 1")
    for key in PER_LANE:
        if len(table.get(key, table["batch_sizes"])) != len(table["batch_sizes"]):
            raise BsimInputError(f"{where(fname, loc, 'race', key)}: got {len(table[key])} entries for "
                                 f"{len(table['batch_sizes'])} batch sizes; expected one per lane")
    return table


register_table("race", check_race_table)
