"""Writing metrics or a recording to /dev/null must not replace the device with a file."""

import os
import stat

import pytest

from bsim.atomic import atomic_write_text
from bsim.cli import main


def test_atomic_write_to_dev_null_keeps_the_device():
    atomic_write_text(os.devnull, "step,epoch\n")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_headless_metrics_to_dev_null(capsys):
    assert main(["run", "default", "--headless", "--steps", "20", "--metrics", os.devnull]) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


@pytest.mark.slow
def test_headless_into_a_closed_pipe_is_quiet():
    """`bsim run --headless | head -1`: no BrokenPipeError traceback when the reader leaves."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bsim", "run", "default", "--headless", "--steps", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
