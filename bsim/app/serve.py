"""`bsim serve`: the app in a browser (textual-serve), and the rules for an app so served.

The server starts one app process per browser tab (``bsim run SCENARIO --served``) in bsim's page
(serve_page.html: textual-serve's, with ``--columns``/``--rows`` fitting the font to the window).
A served app
- opens only bundled scenarios and files under the folder the server was started in
  (no absolute path, no ``..``, no symlink out of it; a scenario's data files likewise);
- ends when its tab closes (textual-serve sends "quit"), when the server goes away (its
  stdin closes, or the server's process is no longer its parent), and on SIGTERM or SIGHUP,
  even while the runner trains: a stuck exit is cut short after ``EXIT_GRACE`` seconds.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from bsim.errors import BsimInputError

#: seconds a served app may take to close once asked before the process is ended outright
EXIT_GRACE = 5.0
#: how often the watchdog looks at the server (s)
WATCH_PERIOD = 0.5
#: --columns and --rows: from the app's smallest usable size to what a 4k screen shows at a readable font
COLUMNS_RANGE, ROWS_RANGE = (70, 400), (20, 150)
#: the page each tab loads (its __BSIM_COLUMNS__ and __BSIM_ROWS__ are filled in by ``page_folder``)
PAGE = Path(__file__).with_name("serve_page.html")

WEB_EXTRA_MISSING = "bsim serve needs the web extra (textual-serve): pip install 'bsim[web]'"


def page_folder(folder: Path, columns: int | None = None, rows: int | None = None) -> Path:
    """Write the page as ``folder``/app_index.html (the template textual-serve renders), asking the browser
    for a font at which at least ``columns`` x ``rows`` cells fit its window (None: not asked)."""
    page = PAGE.read_text(encoding="utf-8")
    page = page.replace("__BSIM_COLUMNS__", str(columns or 0)).replace("__BSIM_ROWS__", str(rows or 0))
    (folder / "app_index.html").write_text(page, encoding="utf-8")
    return folder


def serve(scenario: str, host: str = "127.0.0.1", port: int = 8000, theme: str | None = None,
          columns: int | None = None, rows: int | None = None) -> int:
    """Serve the app on http://host:port until interrupted; bad input is a BsimInputError (exit 2).

    ``columns``/``rows``: each tab's font is the largest at which the page shows at least that many cells
    (a projector at 1920x1080 with 120 x 36: about 25 px, 128 x 36 cells). An empty ``host`` (an unset
    shell variable) is refused: it would listen on every interface; any address but loopback is served
    with one warning line.
    """
    if not host.strip():
        raise BsimInputError("--host '': an empty address listens on every interface; expected an address, "
                             "e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, on purpose)")
    if not _loopback(host):
        print(f"bsim: warning: serving on {host[:64]}, not loopback: anyone who reaches this address can "
              f"open the app and the scenarios under {Path.cwd().name or '/'}/", file=sys.stderr, flush=True)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise BsimInputError(WEB_EXTRA_MISSING) from None
    from bsim.scenario import find_scenario
    find_scenario(scenario)                       # a bad scenario: one line now, not in every tab
    if theme is not None:
        from textual.theme import BUILTIN_THEMES

        from bsim.app.themes import PROJECTOR_THEME
        names = sorted({*BUILTIN_THEMES, PROJECTOR_THEME})
        if theme not in names:
            raise BsimInputError(f"--theme {theme[:24]!r}: expected one of {', '.join(names)}")
    command = [sys.executable, "-m", "bsim", "run", scenario, "--served"]
    if theme:
        command += ["--theme", theme]
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bsim-serve-") as folder:
        server = Server(shlex.join(command), host=host, port=port, title="bsim",
                        templates_path=page_folder(Path(folder), columns, rows))
        try:
            server.serve()
        except OSError as exc:    # the port is taken, the host unknown
            raise BsimInputError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return 0


def _loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------ what a browser may open
def check_served_path(text: str, root: Path) -> str | None:
    """Why a browser may not open ``text`` (None: it may): a bundled name or a file under ``root``."""
    from bsim.scenario import bundled_dir
    name = text.strip()
    if not name:
        return "an empty name"
    if name.startswith("~") or Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
        return "in the browser only bundled scenarios and files under the served folder open (no absolute path, no ..)"
    if (bundled_dir() / f"{name}.toml").exists() and "/" not in name:
        return None
    return _outside(root / name, root)


def check_served_scenario(sc, root: Path) -> str | None:
    """Why a scenario's data files may not be read by a served app (None: they may)."""
    from bsim.scenario import bundled_dir
    for rel in (sc.problem.data, sc.problem.test_data):
        if rel:
            path = sc.resolve(rel)
            if _outside(path, root) and _outside(path, bundled_dir()):
                return "its data files must lie under the served folder"
    return None


def _outside(path: Path, root: Path) -> str | None:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return "in the browser only files under the served folder open"
    return None


# ------------------------------------------------------------------ ending with the server
def watch_server(app) -> None:
    """End ``app`` (a BsimApp under textual-serve) with its server: SIGTERM, SIGHUP, a closed stdin, an orphan.

    The signal handlers are Python's own, not the event loop's. The web driver's SIGTERM handler
    only posts an exit, and a loop blocked in a write to a server that has stopped reading never
    runs it. A Python handler runs even then (the write is interrupted, the handler runs, the
    write resumes): it starts the grace timer and asks the loop to exit. A daemon thread watches
    the parent process and the driver's input thread.
    """
    import asyncio
    loop = asyncio.get_running_loop()

    def on_signal(signum, _frame) -> None:
        end_app(app, f"signal {signal.Signals(signum).name}", loop)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        try:
            signal.signal(sig, on_signal)
        except (OSError, RuntimeError, ValueError):    # not the main thread, or no such signal here
            pass
    parent = os.getppid()

    def watch() -> None:
        while not getattr(app, "_bsim_ending", False):
            threading.Event().wait(WATCH_PERIOD)
            driver = getattr(app, "_driver", None)
            reader = getattr(driver, "_key_thread", None)
            if os.getppid() != parent:
                end_app(app, "the server is gone")
            elif reader is not None and reader.ident is not None and not reader.is_alive():
                end_app(app, "the browser closed")
    threading.Thread(target=watch, name="bsim-serve-watch", daemon=True).start()


def end_app(app, why: str = "", loop=None) -> None:
    """Ask the app to exit (its runner stops on unmount); end the process outright after EXIT_GRACE s.

    ``loop``: from a signal handler, the app's event loop, which is told to exit when it next runs
    (a handler may interrupt the loop itself, so it never calls into the app directly).
    """
    if getattr(app, "_bsim_ending", False):
        return
    app._bsim_ending = True
    timer = threading.Timer(EXIT_GRACE, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
    try:
        if loop is not None:
            loop.call_soon_threadsafe(app.exit, 0)
        elif threading.current_thread() is threading.main_thread():
            app.exit(0)                  # on_unmount stops the runner (and saves a recording)
        else:
            app.call_from_thread(app.exit, 0)
    except Exception:  # noqa: BLE001 - the loop is gone already: the timer ends the process
        pass
