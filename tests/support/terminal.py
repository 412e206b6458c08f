"""A real terminal for end-to-end tests: a program in a pseudo-terminal of 120x36, its screen read as text.

The screen is read from the terminal stream with the escape sequences taken out.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect

from support import ROOT

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHM]|\x1b\][^\x07]*\x07")


class Terminal:
    """``bsim ARGS`` in a pseudo-terminal: the installed command (``installed=True``, as a user runs it), else
    ``python -m bsim`` from this checkout."""

    def __init__(self, args, cwd, installed: bool = False):
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        env.pop("TEXTUAL", None)
        if installed:
            program, argv = str(Path(sys.executable).with_name("bsim")), list(args)
        else:
            program, argv = sys.executable, ["-m", "bsim", *args]
            env["PYTHONPATH"] = str(ROOT)
        self.child = pexpect.spawn(program, argv, cwd=str(cwd), env=env, dimensions=(36, 120),
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
