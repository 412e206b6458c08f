"""The ``[sweep]`` table of a scenario file: the defaults of ``bsim sweep`` (its flags override them).

Registered with ``bsim.scenario`` (``register_table``), so that every load of
a file checks it (``bsim run`` reads the file and ignores the table); an error
names the file, the line and the key. Lists become tuples, lr_grid's numbers floats.
"""

from __future__ import annotations

import math
from typing import Any

from bsim.scenario import register_table
from bsim.sweep.spec import LR_RULES, TARGET_ON
from bsim.tomlcheck import Locator, Rule, check_table, one_of, plain_int, plain_num


def is_target(v) -> bool:
    """A finite loss, or the string "opt+EPS" with a finite EPS > 0 (EPS above the loss at theta*)."""
    if isinstance(v, str):
        s = v.strip()
        if not s.startswith("opt+"):
            return False
        try:
            eps = float(s[4:])
        except ValueError:
            return False
        return math.isfinite(eps) and eps > 0
    return math.isfinite(v)


RULES: dict[str, Rule] = {
    "batch_sizes": ((list,), lambda v: v != [] and all(plain_int(x) and x >= 1 for x in v),
                    "a non-empty list of integers >= 1"),
    "target": ((int, float, str), is_target,
               "a finite loss (or accuracy), or \"opt+EPS\" (EPS > 0 above the optimum's loss)"),
    "on": one_of(TARGET_ON),
    "seeds": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "lr_rule": one_of(LR_RULES),
    "lr_grid": ((list,), lambda v: v != [] and all(plain_num(x) and 0 < x < math.inf for x in v),
                "a non-empty list of finite numbers > 0"),
    "max_steps": ((int,), lambda v: v >= 1, "an integer >= 1"),
}


def check_sweep_table(raw: dict, fname: str, loc: Locator) -> dict[str, Any]:
    """The [sweep] table, checked key by key; lists become tuples, lr_grid numbers floats."""
    table = check_table(raw, RULES, fname, loc, "sweep")
    if "lr_grid" in table:
        table["lr_grid"] = tuple(float(x) for x in table["lr_grid"])
    if "batch_sizes" in table:
        table["batch_sizes"] = tuple(table["batch_sizes"])
    return table


register_table("sweep", check_sweep_table)
