"""A headless race stopped by SIGTERM: exit 143, every lane's rows kept up to the step it reached."""

import os
import signal
import subprocess
import sys
import time

import pytest
from support import ROOT
from support.cli import read_table

pytestmark = pytest.mark.slow      # a real process and a signal

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_sigterm_keeps_each_lanes_rows_and_its_last_step(tmp_path):
    out = tmp_path / "race.csv"
    proc = subprocess.Popen([sys.executable, "-m", "bsim", "race", "default", "--batch-sizes", "8,64", "--headless",
                             "--no-timing", "--steps", "10000000", "--every", "1000", "--metrics", str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 2000):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "interrupted" in err and "B=8 at step" in err
    rows = read_table(out)
    assert rows[0][:2] == ["lane", "step"]
    for lane in ("8", "64"):
        steps = [int(r[1]) for r in rows[1:] if r[0] == lane]
        assert steps and all(s % 1000 == 0 for s in steps[:-1])
        assert f"B={lane} at step {steps[-1]}" in err      # the last row is the step the lane reached
