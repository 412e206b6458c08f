"""SIGTERM, SIGHUP and SIGINT (from outside: in the app ctrl+c is a key) end the app as q does: the runner
stopped (a recording's check written), Textual's own shutdown restoring the terminal (main screen, cursor
shown, mouse off); exit code 128 + the signal's number (143, 129, 130).

The handlers are Python's own, not the event loop's: a loop waiting on a lock (a modal's answer when the
terminal has gone: tmux kill-server, a closed pty) never runs its own, while a Python handler runs even
then. Each signal also starts a grace timer: a process not ended ``EXIT_GRACE`` seconds later (a shutdown
stuck on a terminal that is gone) ends outright with the same code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

#: the signals the app turns into a quit; the exit code is 128 + the signal's number (143, 129, 130)
QUIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))
#: seconds between a quit signal and the end of the process, whatever the app is waiting for
EXIT_GRACE = 5.0


def _end_after_grace(code: int) -> None:
    timer = threading.Timer(EXIT_GRACE, os._exit, args=(code,))
    timer.daemon = True
    timer.start()


def quit_on_signals(app) -> tuple:
    """Route QUIT_SIGNALS to ``app.quit_on_signal(signum)`` on the running event loop, with the grace timer.

    Returns (signal, former handler) pairs for ``forget_signals`` (none outside the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return ()
    loop = asyncio.get_running_loop()

    def on_signal(signum, _frame) -> None:
        _end_after_grace(128 + signum)
        try:
            loop.call_soon_threadsafe(app.quit_on_signal, signum)
        except RuntimeError:      # the loop has closed: the process is ending anyway
            pass

    handled = []
    for sig in QUIT_SIGNALS:
        try:
            handled.append((sig, signal.signal(sig, on_signal)))
        except (ValueError, OSError):
            continue
    return tuple(handled)


def forget_signals(signals) -> None:
    """Give the signals back to their former handlers (the app is closing)."""
    for sig, former in signals:
        signal.signal(sig, signal.SIG_DFL if former is None else former)
