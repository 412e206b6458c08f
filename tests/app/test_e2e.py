"""End to end: the real ``bsim`` command in a pseudo-terminal, as a new user would run it.

It renders the panels, trains, ``]`` doubles the batch size on screen, and ``q``
quits with exit code 0. The screen is read from the terminal stream with the
escape sequences taken out.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHM]|\x1b\][^\x07]*\x07")


class Terminal:
    def __init__(self, args, cwd):
        bsim = Path(sys.executable).with_name("bsim")
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        env.pop("TEXTUAL", None)
        self.child = pexpect.spawn(str(bsim), args, cwd=str(cwd), env=env, dimensions=(36, 120),
                                   encoding="utf-8", codec_errors="replace", timeout=60)
        self.child.delaybeforesend = None       # pexpect waits 50 ms before each send by default
        self.text = ""

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """Read until ``pattern`` (a regex) appears in the screen text written since the last call."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(ANSI.sub("", self.text))
            if m:
                self.text = ""
                return m
            try:
                self.text += self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
        raise AssertionError(f"{pattern!r} never appeared; the screen ends with {ANSI.sub('', self.text)[-800:]!r}")


def test_bsim_renders_trains_doubles_b_and_quits(tmp_path):
    term = Terminal([], tmp_path)
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
