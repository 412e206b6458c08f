"""End to end: ``bsim race`` opens the race screen in a pseudo-terminal; keys act on it; q and SIGTERM end it.

The screen is read from the terminal stream with the escape sequences taken out.
"""

from __future__ import annotations

import re
import signal

import pexpect
import pytest
from support.terminal import Terminal

pytestmark = pytest.mark.slow      # a real terminal


def test_bsim_race_shows_the_lanes_adds_one_and_quits(tmp_path):
    term = Terminal(["race", "default", "--batch-sizes", "8,64"], tmp_path)
    try:
        term.wait_for(r"Loss of each lane[\s\S]*ε-balls, one scale[\s\S]*Lanes")
        term.wait_for(r"B=64\s+[1-9][\d,]*\s")               # the B = 64 lane trains
        term.child.send("a")
        term.wait_for(r"Batch size of the new lane")
        term.child.send("16\r")
        term.wait_for(r"lane B=16, lr 0\.05: from the start")  # the runner's notice
        term.wait_for(r"B=16\s+[1-9][\d,]*\s")               # its row in the table, training
        term.child.send("q")
        term.child.expect(pexpect.EOF, timeout=30)
    finally:
        term.child.close(force=True)
    assert term.child.exitstatus == 0, (term.child.exitstatus, term.child.signalstatus)


def test_sigterm_ends_the_race_screen_with_143_and_writes_its_recording(tmp_path):
    term = Terminal(["race", "default", "--batch-sizes", "8,64", "--record", "race.toml"], tmp_path)
    try:
        term.wait_for(r"B=64\s+[1-9][\d,]*\s")
        term.child.kill(signal.SIGTERM)
        term.child.expect(pexpect.EOF, timeout=30)
    finally:
        term.child.close(force=True)
    assert term.child.exitstatus == 143, (term.child.exitstatus, term.child.signalstatus)
    recording = (tmp_path / "race.toml").read_text()
    assert "[race]" in recording and re.search(r"batch_sizes = \[8, 64\]", recording)
    assert re.search(r"lane_steps = \[[1-9]\d*, [1-9]\d*\]", recording)   # where the lanes stood, not step 0
