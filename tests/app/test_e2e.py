"""End to end: the real ``bsim`` command in a pseudo-terminal, as a new user would run it.

It renders the panels, trains, ``]`` doubles the batch size on screen, and ``q``
quits with exit code 0. The screen is read from the terminal stream with the
escape sequences taken out.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest
from support.terminal import Terminal

pytestmark = pytest.mark.slow      # a real terminal

def test_bsim_renders_trains_doubles_b_and_quits(tmp_path):
    term = Terminal([], tmp_path, installed=True)
    try:
        # the first paint, top to bottom: every panel's title
        term.wait_for(r"Counters[\s\S]*Loss[\s\S]*Batch gradient[\s\S]*Variance across batches[\s\S]*ε-ball")
        term.wait_for(r"status\s+running")
        term.wait_for(r"step\s+[1-9][\d,]*")                 # it trains
        term.child.send("]")
        term.wait_for(r"batch size 8 -> 16")                 # the notice
        term.child.send(" ")                                 # pause: the counters then hold still
        term.wait_for(r"batch size\s+16\s+\(N = 1,024\)")    # the counter on screen
        term.child.send("q")
        term.child.expect(pexpect.EOF, timeout=30)
    finally:
        term.child.close(force=True)
    assert term.child.exitstatus == 0, (term.child.exitstatus, term.child.signalstatus)
    assert not list(tmp_path.glob("*.tmp"))


def test_bsim_with_a_bad_flag_says_why_in_one_line(tmp_path):
    child = pexpect.spawn(str(Path(sys.executable).with_name("bsim")), ["run", "--batch-size", "0"],
                          cwd=str(tmp_path), encoding="utf-8", timeout=60)
    out = child.read()
    child.close()
    assert child.exitstatus == 2
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "batch-size" in lines[0] and "expected an integer >= 1" in lines[0]
