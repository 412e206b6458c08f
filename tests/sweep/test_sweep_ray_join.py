"""Joining a Ray cluster through RAY_ADDRESS: the sweep ships its own bsim (runtime_env) and gives the
rows of an in-process run. The head is started here on 127.0.0.1, with a PYTHONPATH whose `bsim` cannot
be imported: a worker can only run the tasks with the bsim the driver ships."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support import ROOT
from support.cli import read_rows
from support.sweep import without_wall, write_small

from bsim.cli import main

pytestmark = pytest.mark.slow      # a Ray head in another process
pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]' (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sweep_joins_a_head_through_ray_address_and_ships_its_bsim(tmp_path):
    scenario = write_small(tmp_path)
    decoy = tmp_path / "decoy" / "bsim"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the head has no bsim of its own')\n")
    port = free_port()
    head_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    head_env["PYTHONPATH"] = str(decoy.parent)
    ray_cli = Path(sys.executable).with_name("ray")
    # its own temp dir (short: Ray's socket paths): the head's address file stays out of /tmp/ray, where a
    # later ray.init() of this user would find it and try to join this head after it is gone
    temp_dir = tempfile.mkdtemp(prefix="bsimray", dir="/tmp")
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={temp_dir}"], env=head_env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        args = ["sweep", str(scenario), "--batch-sizes", "1,4,16", "--target", "opt+0.05", "--lr-rule", "linear",
                "--seeds", "2", "--no-plots", "--no-calibration"]   # no machine-dependent time columns
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": f"127.0.0.1:{port}"}
        deadline = time.monotonic() + 120
        while True:                       # the head takes a few seconds to listen
            run = subprocess.run([sys.executable, "-m", "bsim", *args, "--out", str(tmp_path / "ray.csv"), "--ray"],
                                 env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            if run.returncode != 2 or "cannot start or join Ray" not in run.stderr or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert main([*args, "--out", str(tmp_path / "here.csv"), "--workers", "1"]) == 0
    there = read_rows(tmp_path / "ray.csv")
    assert without_wall(there) == without_wall(read_rows(tmp_path / "here.csv")) and len(there) == 6
