"""Fixtures of the sweep tests."""

import pytest
from support.sweep import write_small


@pytest.fixture
def small(tmp_path):
    """The small least-squares scenario of the sweep tests, as a file."""
    return write_small(tmp_path)
