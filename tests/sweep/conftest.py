"""Fixtures of the sweep tests."""

import pytest
from support.sweep import SMALL


@pytest.fixture
def small(tmp_path):
    """The small least-squares scenario of the sweep tests, as a file."""
    p = tmp_path / "small.toml"
    p.write_text(SMALL)
    return p
