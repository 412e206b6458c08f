"""Typed answers (b, the lr, M, a race lane's B) read into values and setting actions, or one line that says
what was expected (``BadAnswer``)."""

from __future__ import annotations

import math

from bsim import actions


class BadAnswer(ValueError):
    """A typed value the setting cannot take; its text is the notice."""


def batch_size(text: str) -> int:
    """A typed batch size: an integer >= 1 ("64", "1_024", "1,024") in ASCII digits ("８" and "²" are not)."""
    word = text.strip()
    digits = word.replace("_", "").replace(",", "")
    if not (digits.isascii() and digits.isdigit()):
        raise BadAnswer(f"batch size {word[:12]!r}: expected an integer >= 1")
    value = int(digits)
    if value < 1:
        raise BadAnswer(f"batch size {value}: expected an integer >= 1")
    return value


def batch_size_action(text: str) -> actions.SetBatchSize:
    """The batch size typed after b, as the action that sets it."""
    return actions.SetBatchSize(batch_size(text))


def lr_action(text: str) -> actions.SetLR:
    """A finite number > 0."""
    try:
        value = float(text.strip())
    except ValueError:
        raise BadAnswer(f"lr {text.strip()[:12]!r}: expected a number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise BadAnswer(f"lr {text.strip()[:12]}: expected a number > 0")
    return actions.SetLR(value)


def momentum_action(text: str) -> actions.SetMomentum:
    """A number in [0, 1): the heavy ball's beta (1 would never forget a gradient)."""
    try:
        value = float(text.strip())
    except ValueError:
        raise BadAnswer(f"momentum {text.strip()[:12]!r}: expected a number in [0, 1)") from None
    if not 0 <= value < 1:
        raise BadAnswer(f"momentum {text.strip()[:12]}: expected a number in [0, 1)")
    return actions.SetMomentum(value)
