"""A command in a real terminal (tmux, a server of its own): keys in, the screen as text out."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from support import ROOT


class Tmux:
    """A command in a detached tmux session of its own server (``-L``): keys in, the screen as text out."""

    def __init__(self, command: str, cwd, width: int = 120, height: int = 36):
        self.socket = f"bsim-test-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", PYTHONPATH=str(ROOT))
        env.pop("TEXTUAL", None)
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "t",
                        "-x", str(width), "-y", str(height), "-c", str(cwd), command], check=True, env=env)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "t", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "t"], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, test, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never showed in {timeout:.0f} s; the screen:\n{text}")
            time.sleep(0.25)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False, capture_output=True)
