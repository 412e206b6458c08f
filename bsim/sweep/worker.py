"""The start of a sweep's pool worker: ignore Ctrl-C (the driver handles it), die with the driver.

A light module on purpose: a spawned worker unpickles its initializer before anything else, and
this one must not import torch first (seconds), or a worker whose sweep is killed meanwhile would
miss the notice and run on under PID 1.
"""

from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1     # linux/prctl.h


def init_worker(driver_pid: int) -> None:
    """The pool's initializer: SIGINT ignored, exit with the driver, one torch thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(driver_pid)
    import torch
    torch.set_num_threads(1)


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> str:
    """End this process when ``parent_pid`` (the sweep) dies, even by kill -9, so that no worker is left
    running a task under PID 1. Linux: prctl(PR_SET_PDEATHSIG, SIGKILL), the kernel's own notice (sent
    when the thread that started this process ends: the sweep's main thread); elsewhere, a daemon
    thread that polls os.getppid() every ``poll_s`` seconds. Returns which it used."""
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ok = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            ok = False
        if ok:
            if os.getppid() != parent_pid:      # the parent died before prctl: nobody would tell us
                os._exit(1)
            return "prctl"

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    import threading
    threading.Thread(target=watch, name="bsim-parent-watch", daemon=True).start()
    return "poll"
