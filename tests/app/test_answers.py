"""A typed batch size is read one way in both apps (b in bsim run, a and x in the race)."""

from __future__ import annotations

import pytest

from bsim.app.answers import BadAnswer, batch_size, batch_size_action


@pytest.mark.parametrize("text,value", [("64", 64), (" 1,024 ", 1024), ("1_024", 1024), ("007", 7)])
def test_a_batch_size_may_have_thousands_separators(text, value):
    assert batch_size(text) == value
    assert batch_size_action(text).batch_size == value


@pytest.mark.parametrize("text", ["abc", "0", "-4", "2.5", "1e3", "８", "²", "٣", "", ","])
def test_anything_but_ascii_digits_or_below_one_is_refused_with_one_line(text):
    with pytest.raises(BadAnswer) as err:
        batch_size(text)
    assert "expected an integer >= 1" in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("batch size ")


def test_the_refusal_echoes_at_most_twelve_characters():
    with pytest.raises(BadAnswer) as err:
        batch_size("x" * 200)
    assert "x" * 12 in str(err.value) and "x" * 13 not in str(err.value)
