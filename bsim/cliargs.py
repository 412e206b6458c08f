"""argparse value checkers shared by the commands: a bad value is one line naming it and what is expected.

argparse turns the ArgumentTypeError into ``bsim <command>: argument --flag: 'text': expected ...``,
which bsim prints in one line with exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bsim.errors import quote


def int_at_least(lo: int, what: str, at_most: int | None = None) -> Callable[[str], int]:
    """An integer lo <= v (<= at_most when given), in ASCII digits (int() also reads '８' and '٣'); ``what`` says
    what is expected."""
    def parse(text: str) -> int:
        try:
            if not text.isascii():
                raise ValueError(text)
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quote(text)}: expected {what}") from None
        if v < lo or (at_most is not None and v > at_most):
            raise argparse.ArgumentTypeError(f"{quote(text)}: expected {what}")
        return v
    return parse


def float_in(check: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """A number for which ``check`` holds, in ASCII (float() also reads '８'); ``what`` says what is expected."""
    def parse(text: str) -> float:
        try:
            if not text.isascii():
                raise ValueError(text)
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{quote(text)}: expected {what}") from None
        if not check(v):
            raise argparse.ArgumentTypeError(f"{quote(text)}: expected {what}")
        return v
    return parse
