"""Sweep settings a scenario file may carry, and the flag parsers.

A scenario meant for sweeps states its settings in comment lines that start
with ``# sweep:``, so that the file stays a plain scenario (``bsim run``
ignores comments) while ``bsim sweep`` reads them as defaults that flags
override, e.g.::

    # sweep: batch_sizes = [1, 2, 4, 8, 16, 32, 64]
    # sweep: target = 0.14
    # sweep: lr_rule = "tuned"
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

from bsim.errors import BsimInputError
from bsim.sweep.spec import LR_RULES, ON

_LINE = re.compile(r"^\s*#\s*sweep:\s?(.*)$")

KEYS = {
    "batch_sizes": "a list of integers >= 1",
    "target": "a loss, or \"opt+EPS\" (EPS > 0 above the optimum's loss)",
    "on": "one of " + ", ".join(ON),
    "seeds": "an integer >= 1",
    "lr_rule": "one of " + ", ".join(LR_RULES),
    "lr_grid": "a list of numbers > 0",
    "max_steps": "an integer >= 1",
}


def _valid(key: str, v) -> bool:
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
    if key == "batch_sizes":
        return isinstance(v, list) and v != [] and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)
    if key == "lr_grid":
        return isinstance(v, list) and v != [] and all(num(x) and 0 < x < float("inf") for x in v)
    if key == "target":
        if isinstance(v, str):
            try:
                parse_target(v)
            except BsimInputError:
                return False
            return True
        return num(v)
    if key in ("seeds", "max_steps"):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1
    if key == "on":
        return v in ON
    return v in LR_RULES


def sweep_defaults(path: Path | None) -> dict:
    """The ``# sweep:`` settings of a scenario file (empty when it has none), validated with their line."""
    if path is None:
        return {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    out = {}
    for n, raw in enumerate(lines, start=1):
        m = _LINE.match(raw)
        if not m or not m.group(1).strip():
            continue
        try:
            item = tomllib.loads(m.group(1))
        except tomllib.TOMLDecodeError:
            raise BsimInputError(f"{path}:{n}: '# sweep:' line is not `key = value` in TOML") from None
        for key, v in item.items():
            if key not in KEYS:
                raise BsimInputError(f"{path}:{n}: sweep.{key}: got an unknown key, expected one of {', '.join(KEYS)}")
            if not _valid(key, v):
                raise BsimInputError(f"{path}:{n}: sweep.{key}: got {v!r}, expected {KEYS[key]}")
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """'1,2,4,...,1024' (a progression: geometric, or arithmetic when 3 terms show one) or a plain list."""
    what = "a comma-separated list of integers >= 1, e.g. 1,2,4,...,1024"
    parts = [p.strip() for p in text.split(",")]
    if "..." in parts:
        i = parts.index("...")
        head, tail = parts[:i], parts[i + 1:]
        if len(head) < 2 or len(tail) != 1 or "..." in tail:
            raise BsimInputError(f"--batch-sizes {text!r}: '...' needs two terms before it and the last after it; "
                                 f"expected {what}")
        nums = _ints(head + tail, text, what)
        head_n, last = nums[:-1], nums[-1]
        a, b = head_n[-2], head_n[-1]
        if len(head_n) >= 3 and b - a == a - head_n[-3] and b > a:
            seq, nxt = list(head_n), lambda x: x + (b - a)
        elif b % a == 0 and b > a:
            seq, nxt = list(head_n), lambda x: x * (b // a)
        else:
            raise BsimInputError(f"--batch-sizes {text!r}: {a}, {b} starts no progression; expected {what}")
        while nxt(seq[-1]) <= last:
            seq.append(nxt(seq[-1]))
        if seq[-1] != last:
            raise BsimInputError(f"--batch-sizes {text!r}: {last} is not in the progression "
                                 f"{', '.join(map(str, head_n))}, ...; expected {what}")
        values = seq
    else:
        values = _ints(parts, text, what)
    if len(set(values)) != len(values):
        raise BsimInputError(f"--batch-sizes {text!r}: a batch size is repeated; expected {what}")
    return tuple(sorted(values))


def _ints(parts: list[str], text: str, what: str) -> list[int]:
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise BsimInputError(f"--batch-sizes {text!r}: expected {what}") from None
    if any(v < 1 for v in vals):
        raise BsimInputError(f"--batch-sizes {text!r}: expected {what}")
    return vals


def parse_target(text) -> tuple[float, bool]:
    """(value, excess): '0.49' is a loss; 'opt+0.006' is 0.006 above the loss at theta* (per seed)."""
    if not isinstance(text, str):
        return float(text), False
    s = text.strip()
    excess = s.startswith("opt+")
    try:
        v = float(s[4:] if excess else s)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or (excess and v <= 0):
        raise BsimInputError(f"--target {text!r}: expected a loss such as 0.49, or opt+EPS (EPS > 0) such as opt+0.006")
    return v, excess


def parse_lr_grid(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(p) for p in text.split(","))
    except ValueError:
        vals = ()
    if not vals or not all(0 < v < float("inf") for v in vals):
        raise BsimInputError(f"--lr-grid {text!r}: expected a comma-separated list of numbers > 0, e.g. 0.01,0.03,0.1")
    return tuple(sorted(set(vals)))
