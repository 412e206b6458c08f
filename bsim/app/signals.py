"""SIGTERM and SIGHUP end the app as q does: the runner stopped (a recording's check written),
Textual's own shutdown restoring the terminal (main screen, cursor shown, mouse off)."""

from __future__ import annotations

import asyncio
import signal

#: the signals the app turns into a quit; the exit code is 128 + the signal's number (143, 129)
QUIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def quit_on_signals(app) -> tuple:
    """Route QUIT_SIGNALS to ``app.quit_on_signal(signum)`` through the running event loop.

    Returns the signals now handled (none on Windows, or outside the main thread).
    """
    loop = asyncio.get_running_loop()
    handled = []
    for sig in QUIT_SIGNALS:
        try:
            loop.add_signal_handler(sig, app.quit_on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        handled.append(sig)
    return tuple(handled)


def forget_signals(signals) -> None:
    """Give the signals back to their former handlers (the app is closing)."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.remove_signal_handler(sig)
