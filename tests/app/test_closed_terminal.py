"""The app ends when its terminal goes away with a modal, prompt or palette open (issue 19, item 2), and
SIGINT from outside exits 130 (item 15): through tmux, as a user closes a session, and a pseudo-terminal.
On the old code the palette and c cases outlived tmux (the others hung only some of the time), and SIGINT
exited 0.

Before, with the race's ``a`` or ``?`` open, or the main app's ``b`` or ctrl+p, ``tmux kill-server`` left the
process alive forever with no terminal (PPID 1), its event loop waiting on a lock.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(subprocess.run(["which", "tmux"], capture_output=True).returncode != 0,
                                 reason="needs tmux")]

RACE = ("race", "default", "--batch-sizes", "8,64,512")
RUN = ("run", "default")


class Session:
    """``bsim ARGS`` alone in a detached tmux server of its own; its process id read from a file."""

    def __init__(self, args, folder: Path):
        self.socket = f"bsim-closed-{uuid.uuid4().hex[:8]}"
        pid_file = folder / "pid"
        command = f"echo $$ > {pid_file}; exec {shlex.quote(sys.executable)} -m bsim {shlex.join(args)}"
        env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(ROOT))
        env.pop("TEXTUAL", None)
        self.tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "36", "-c", str(folder), command, env=env)
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.1)
        self.pid = int(pid_file.read_text())

    def tmux(self, *argv, env=None) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *argv], check=True,
                              capture_output=True, text=True, env=env).stdout

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in (screen := self.tmux("capture-pane", "-p", "-t", "t")):
            assert time.monotonic() < deadline, f"{text!r} never showed; the screen:\n{screen}"
            time.sleep(0.25)

    def alive(self) -> bool:
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)


@pytest.mark.parametrize("args, keys", [
    (RACE, ["a"]), (RACE, ["?"]), (RUN, ["b"]), (RUN, ["C-p"]), (RUN, ["?"]), (RUN, ["c"]),
], ids=["race-a", "race-help", "run-b", "run-palette", "run-help", "run-c"])
def test_closing_tmux_with_a_modal_open_ends_the_process(tmp_path, args, keys):
    session = Session(args, tmp_path)
    try:
        session.wait_for("step")
        session.tmux("send-keys", "-t", "t", *keys)
        time.sleep(2.0)                     # the modal is drawn (it is waiting for its answer)
        subprocess.run(["tmux", "-L", session.socket, "kill-server"], check=True)
        deadline = time.monotonic() + 10
        while session.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not session.alive(), f"bsim {' '.join(args)} with {keys} open outlived its terminal by 10 s"
    finally:
        session.close()


@pytest.mark.parametrize("keys", [(), ("b",)], ids=["plain", "prompt-open"])
def test_sigint_from_outside_exits_130_and_writes_the_recording(tmp_path, keys):
    import pexpect
    from support.terminal import Terminal
    recording = tmp_path / "rec.toml"
    term = Terminal(RUN + ("--record", str(recording)), tmp_path)
    term.wait_for("step")
    for key in keys:
        term.child.send(key)
    time.sleep(1.0)
    os.kill(term.child.pid, signal.SIGINT)
    term.child.expect(pexpect.EOF, timeout=20)
    term.child.wait()
    assert term.child.exitstatus == 130, (term.child.exitstatus, term.child.signalstatus)
    assert "final_tick" in recording.read_text()
