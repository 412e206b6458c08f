"""TOML files checked key by key, with the line of every error; and TOML values written back.

tomllib gives no positions, so ``Locator`` finds the line of a key in the text.
``check_table`` checks a table against rules ``key -> (types, check, what is
expected)`` and raises ``BsimInputError("file:line: table.key: got X, expected Y")``.
``toml_value`` writes one value as TOML (the one writer for scenarios and recordings).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from collections.abc import Callable

from bsim.errors import QUOTE_CHARS, BsimInputError, quote

#: key -> (python types, check or None, what is expected)
Rule = tuple[tuple[type, ...], Callable[[Any], bool] | None, str]
SHA256 = re.compile(r"^[0-9a-f]{64}$")     # a sha256 as recordings write it: 64 lowercase hex digits


def plain_int(v: Any) -> bool:
    """An integer that is not a boolean (a list's items are checked one by one)."""
    return isinstance(v, int) and not isinstance(v, bool)


def plain_num(v: Any) -> bool:
    """An integer or a float that is not a boolean."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def one_of(options: tuple[str, ...]) -> Rule:
    """The rule of a string key that takes one of ``options``."""
    return ((str,), lambda v: v in options, "one of " + ", ".join(options))


class Locator:
    """Finds the line of a key or a table header in TOML text."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line_of(self, table: str | None, key: str, index: int | None = None) -> int | None:
        if table is None:  # a top-level key, or a table of that name
            return self._line_of(None, key) or self.line_of_table(key) or self.line_of_table(key, 0)
        return self._line_of(table, key, index)

    def _line_of(self, table: str | None, key: str, index: int | None = None) -> int | None:
        header = None if table is None else (f"[[{table}]]" if index is not None else f"[{table}]")
        current, count = None, -1
        key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for n, raw in enumerate(self.lines, start=1):
            s = raw.strip()
            if s.startswith("["):
                current = s.split("#")[0].strip().replace(" ", "")
                if current == header:
                    count += 1
                continue
            if current == header and (index is None or count == index) and key_re.match(raw):
                return n
        return None

    def line_of_table(self, table: str, index: int | None = None) -> int | None:
        header = f"[[{table}]]" if index is not None else f"[{table}]"
        count = -1
        for n, raw in enumerate(self.lines, start=1):
            if raw.split("#")[0].strip().replace(" ", "") == header:
                count += 1
                if index is None or count == index:
                    return n
        return None

    def where_table(self, fname: str, table: str, index: int | None = None) -> str:
        """``file:line`` of a table header (``file`` alone when it is not found)."""
        line = self.line_of_table(table, index)
        return f"{fname}:{line}" if line else fname


def where(fname: str, loc: Locator, table: str | None, key: str, index: int | None = None) -> str:
    """``file:line: table.key`` (``file: table.key`` when the line is not found)."""
    line = loc.line_of(table, key, index)
    key = key if len(key) <= QUOTE_CHARS and key.isprintable() else quote(key)    # a user's key: 12 chars
    qual = key if table is None else (f"{table}[{index}].{key}" if index is not None else f"{table}.{key}")
    return f"{fname}:{line}: {qual}" if line else f"{fname}: {qual}"


def known_keys(keys, most: int = 160) -> str:
    """The keys a table takes, for an error line: all of them, or as many as fit in ``most`` characters and how
    many more (the [problem] table takes every kind's keys: 25 and more)."""
    shown = ", ".join(keys)
    if len(shown) <= most:
        return shown
    head = shown[:most].rsplit(", ", 1)[0]
    return f"{head}, ... ({len(keys)} keys in all; docs/usage.md lists them)"


def check_table(data: dict, rules: dict[str, Rule], fname: str, loc: Locator,
                table: str | None, index: int | None = None, also: tuple[str, ...] = ()) -> dict:
    """The table's values, checked against ``rules``; integers in number fields become floats."""
    out = {}
    for key, value in data.items():
        if key not in rules:
            known = known_keys((*rules, *also))
            raise BsimInputError(f"{where(fname, loc, table, key, index)}: got an unknown key, expected one of {known}")
        types, check, expected = rules[key]
        ok_type = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok_type or (check is not None and not check(value)):
            raise BsimInputError(f"{where(fname, loc, table, key, index)}: got {quote(value)}, expected {expected}")
        if isinstance(value, int) and not isinstance(value, bool) and float in types:
            value = float(value)   # a number field: 1 and 1.0 are the same value
        out[key] = value
    return out


def toml_error(fname: str, text: str, msg: str) -> str:
    """'file:LINE: not valid TOML: what (column C)' from tomllib's '... (at line L, column C)'."""
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
    if m:
        return f"{fname}:{m.group(1)}: not valid TOML: {msg[:m.start()]} (column {m.group(2)}); expected TOML syntax"
    m = re.search(r"\s*\(at end of document\)$", msg)
    if m:
        line = max(1, len(text.splitlines()))
        return f"{fname}:{line}: not valid TOML: {msg[:m.start()]} at the end of the file; expected TOML syntax"
    return f"{fname}: not valid TOML: {msg}; expected TOML syntax"


def toml_value(v: Any) -> str:
    """One value as TOML: booleans, numbers (nan and inf too), strings, lists, inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, str):  # a TOML basic string: JSON's escapes are TOML's (control characters too)
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, dict):  # an inline table; a key that is not bare is quoted
        bare = re.compile(r"^[A-Za-z0-9_-]+$")
        items = (f"{k if bare.match(k) else toml_value(k)} = {toml_value(x)}" for k, x in v.items())
        return "{ " + ", ".join(items) + " }" if v else "{}"
    raise TypeError(f"cannot write {v!r} to TOML")
