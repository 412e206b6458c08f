"""The parsers of `bsim sweep`'s flags (--batch-sizes, --target, --lr-grid).

A scenario's own sweep defaults live in its ``[sweep]`` table, checked by
``bsim.sweep.schema`` (``Scenario.sweep``); flags override them.
"""

from __future__ import annotations

import math

from bsim.errors import BsimInputError, quote


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


def parse_target(text, accuracy: bool = False) -> tuple[float, bool]:
    """(value, excess): '0.49' is a loss (an accuracy with ``accuracy``, --on train_acc or test_acc);
    'opt+0.006' is 0.006 above the loss at theta* (per seed)."""
    if not isinstance(text, str):
        return float(text), False
    s = text.strip()
    excess = s.startswith("opt+")
    try:
        v = float(s[4:] if excess else s)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or (excess and v <= 0):
        if accuracy:
            raise BsimInputError(f"--target {quote(text)}: expected an accuracy in (0, 1] such as 0.9 (the fraction "
                                 f"classified right to reach)")
        raise BsimInputError(f"--target {quote(text)}: expected a loss such as 0.49, or opt+EPS (EPS > 0) such as "
                             f"opt+0.006")
    return v, excess


def parse_lr_grid(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(p) for p in text.split(","))
    except ValueError:
        vals = ()
    if not vals or not all(0 < v < float("inf") for v in vals):
        raise BsimInputError(f"--lr-grid {text!r}: expected a comma-separated list of numbers > 0, e.g. 0.01,0.03,0.1")
    return tuple(sorted(set(vals)))
