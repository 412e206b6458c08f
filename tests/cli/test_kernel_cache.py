"""The C kernel's cache against a hostile neighbour (issue 19, items 1, 7 and 10), through ``bsim run``.

A library planted where bsim would load it (a shared ``chmod 777`` cache, or bsim's own folder with no
digest) never runs its constructor; a truncated library is built again (it killed the process with
SIGBUS); a FIFO at the library's path is refused; a compiler that makes nothing, one that hangs, or a stop
signal during the build leave no library, no temporary file and no compiler behind; the temporary file of a
build killed with -9 is removed by the next build.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT
from support.cli import read_table

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("cc") is None, reason="the C kernel needs a C compiler (cc)")]

ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ENV.pop("BSIM_NATIVE", None)
ENV.pop("CC", None)
RUN = ("run", "lstm", "--headless", "--steps", "3", "--chains", "4")

PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w"); if (f) { fputs("ran", f); fclose(f); }
}
"""


def bsim(cache: Path, tmp_path: Path, timeout=240, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bsim", *RUN, "--metrics", tmp_path / "m.csv"],
                          env=dict(ENV, BSIM_CACHE=str(cache), **env), capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path)


def library_name(tmp_path: Path) -> str:
    """The library's file name bsim looks for (a hash of the source, the compiler and the flags)."""
    code = ("from bsim.ensemble import native; "
            "print(native._library_path(16, native._compiler(), native._flags()).name)")
    out = subprocess.run([sys.executable, "-c", code], env=dict(ENV, BSIM_CACHE=str(tmp_path / "probe")),
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def plant(path: Path, marker: Path) -> None:
    source = path.with_suffix(".c")
    source.write_text(PLANTED)
    subprocess.run(["cc", "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", path, source], check=True)
    source.unlink()


def rows(tmp_path: Path) -> int:
    return len(read_table(tmp_path / "m.csv")) - 1


def test_a_library_planted_in_a_world_writable_cache_never_runs(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    marker = tmp_path / "marker"
    plant(shared / library_name(tmp_path), marker)
    done = bsim(shared, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "the planted constructor ran"
    warning = [line for line in done.stderr.splitlines() if "kernel cache" in line]
    assert len(warning) == 1 and "writable by group or others" in warning[0]
    assert rows(tmp_path) == 3


def test_a_library_without_bsim_s_digest_in_its_own_folder_is_rebuilt_not_loaded(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    marker = tmp_path / "marker"
    library = cache / library_name(tmp_path)
    plant(library, marker)
    stale = cache / f"{library.stem}.k9x.so.tmp"        # what a build killed with -9 left
    stale.write_bytes(b"\x7fELF half a library")
    os.utime(stale, (time.time() - 300, time.time() - 300))
    done = bsim(cache, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), "the planted constructor ran"
    digest = library.with_name(library.name + ".sha256")
    assert digest.exists() and library.stat().st_size > 1000
    assert not stale.exists(), "the temporary file of a killed build stayed"
    for path in (cache, library, digest):       # what bsim creates there: 0700 / 0600
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    # a truncated copy of the good library (SIGBUS before): built again, the run goes on
    good = library.read_bytes()
    for cut in (4000, 20000):
        library.write_bytes(good[:cut])
        done = bsim(cache, tmp_path)
        assert done.returncode == 0, done.stderr
        assert library.read_bytes() == good
    assert sorted(p.suffix for p in cache.iterdir()) == [".sha256", ".so"], "no temporary file left"


def test_a_fifo_at_the_library_s_path_is_refused_and_an_empty_build_is_a_failed_one(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    fifo = cache / library_name(tmp_path)
    os.mkfifo(fifo)
    done = bsim(cache, tmp_path, timeout=120)     # hung forever before
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and rows(tmp_path) == 3
    fifo.unlink()
    done = bsim(cache, tmp_path, CC="/bin/true")   # exits 0 and writes nothing
    assert done.returncode == 0, done.stderr
    assert list(cache.iterdir()) == [], "an empty library (or a temporary file) was left in the cache"


def start_with_a_hanging_compiler(tmp_path: Path, **popen) -> tuple[subprocess.Popen, Path, Path]:
    """bsim building its kernel with a compiler that starts a child and waits: (the process, the cache, the
    file holding the compiler's and its child's pids), once the compiler runs."""
    cache = tmp_path / "cache"
    pids = tmp_path / "pids"
    slow_cc = tmp_path / "slow-cc"
    slow_cc.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}\nwait\n")
    slow_cc.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "bsim", *RUN, "--metrics", tmp_path / "m.csv"],
                            env=dict(ENV, BSIM_CACHE=str(cache), CC=str(slow_cc)), cwd=tmp_path, **popen)
    deadline = time.monotonic() + 120
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids.exists(), "the compiler never started"
    return proc, cache, pids


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stop_signal_during_the_build_kills_the_compiler_and_its_children(tmp_path):
    proc, cache, pids = start_with_a_hanging_compiler(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                      text=True)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 15, "the signal waited for the build"
    assert proc.returncode == 143, err
    time.sleep(0.5)
    for pid in map(int, pids.read_text().split()):      # the compiler and its child
        assert not running(pid), pid
    assert list(cache.iterdir()) == [], "a temporary file stayed in the cache"


def test_bsim_killed_with_9_during_the_build_takes_the_compiler_and_its_file_with_it(tmp_path):
    proc, cache, pids = start_with_a_hanging_compiler(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert list(cache.glob("*.so.tmp")), "the build's temporary file"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(map(running, map(int, pids.read_text().split()))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(running, map(int, pids.read_text().split()))), "the compiler outlived bsim"
    assert list(cache.iterdir()) == [], "the temporary file stayed"
