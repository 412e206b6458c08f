"""`bsim serve` end to end: a real server, headless Chromium (Playwright), the app drawing and answering keys.

Needs the web extra and Debian's chromium (``.ci/run`` installs both):
    pip install -e ".[test,web]" (playwright is in the test extra);  apt-get install -y chromium
The page's text is what the server sends the page's terminal (xterm.js draws it on a canvas,
so there is no DOM text to read): a hook on the page's WebSocket keeps the bytes, and the
escape sequences are stripped from them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import ROOT

from bsim.app.serve import EXIT_GRACE

pytestmark = pytest.mark.slow      # a real server and browser
pytest.importorskip("textual_serve", reason="needs the web extra: pip install -e '.[web]' (.ci/run installs it)")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

#: keeps what the server sends the page's terminal in window.__bsimText (the last 400k characters)
HOOK = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__bsimText = "";
  function Hooked(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") {
        window.__bsimText = (window.__bsimText + decoder.decode(new Uint8Array(e.data), {stream: true})).slice(-400000);
      }
    });
    return ws;
  }
  Hooked.prototype = Native.prototype;
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Hooked[k] = Native[k];
  window.WebSocket = Hooked;
})();
"""
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    parent_of = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        todo += kids
    return out


def served_apps(server_pid: int) -> list[int]:
    apps = []
    for pid in children(server_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--served" in cmd:             # the app itself, not the shell that started it ("sh -c '...'")
            apps.append(pid)
    return apps


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(check, timeout: float, what: str, period: float = 0.1, seen=None):
    """``check()``'s first true value within ``timeout`` s; else an AssertionError naming ``what``, with
    ``seen()`` (what there was instead: the page's text, the processes) when given."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(period)
    instead = f"; instead: {seen()!r}" if seen is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{instead}")


def one_app(server_pid: int) -> int:
    """The one app the server runs for the tab (a reconnecting page may briefly have a second)."""
    def single() -> int | None:
        apps = served_apps(server_pid)
        return apps[0] if len(apps) == 1 else None
    return wait_for(single, 10, "one app process", seen=lambda: served_apps(server_pid))


def page_text(page) -> str:
    return _ESCAPES.sub("", page.evaluate("window.__bsimText"))


@pytest.fixture
def server(tmp_path, request):
    """`bsim serve` in ``tmp_path`` (with the flags of an indirect parametrization, if any): (process, url)."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    flags = list(getattr(request, "param", ()))
    proc = subprocess.Popen([sys.executable, "-m", "bsim", "serve", "--port", str(port), *flags], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"

    def up():
        try:
            return urllib.request.urlopen(url, timeout=1).status == 200
        except OSError:
            return proc.poll() is not None     # ended: say so below instead of waiting
    wait_for(up, 20, "the server to answer")
    assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-2000:]
    yield proc, url
    try:
        os.killpg(proc.pid, signal.SIGKILL)      # the server's session: its apps too, orphaned or not
    except ProcessLookupError:
        pass
    proc.wait(5)


@contextlib.contextmanager
def chromium():
    """Debian's chromium under Playwright (the test extra), closed at the end."""
    sync_playwright = pytest.importorskip(
        "playwright.sync_api", reason="needs playwright: pip install -e '.[test,web]' (.ci/run installs it)"
    ).sync_playwright
    assert Path(CHROMIUM).exists(), "the browser test needs Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_serve_draws_answers_keys_and_ends_with_the_tab_and_with_the_server(server, tmp_path):
    proc, url = server
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        delivered = {}

        def keep_download(route):                      # what ctrl+s sends the browser
            response = route.fetch()
            delivered.update(body=response.body(), disposition=response.headers.get("content-disposition"))
            route.fulfill(response=response)
        context.route("**/download/**", keep_download)
        page = context.new_page()
        page.add_init_script(HOOK)
        page.goto(url)
        wait_for(lambda: "Counters" in page_text(page) and "ε-ball" in page_text(page), 30,
                 "the app to draw in the page",
                 seen=lambda: page_text(page)[-400:])
        app = one_app(proc.pid)
        # no click: the footer shows its keys from the first frame, and the page's terminal has the keys
        wait_for(lambda: "? help" in page_text(page), 10, "the footer without a click",
                 seen=lambda: page_text(page)[-400:])
        page.keyboard.type("]")
        wait_for(lambda: "batch size 8 -> 16" in page_text(page), 10, "the app to answer ]",
                 seen=lambda: page_text(page)[-400:])
        page.keyboard.press("Control+s")
        wait_for(lambda: page.evaluate("1") and delivered, 15, "the SVG screenshot in the browser")
        assert delivered["body"].startswith(b"<svg") and delivered["body"].rstrip().endswith(b"</svg>")
        assert re.search(r"attachment; filename=bsim-[-_0-9]+\.svg", delivered["disposition"])
        assert not (tmp_path / "screenshots").exists()    # into the browser, not onto the server's disk
        page.close()                                   # the tab closes: its app ends
        wait_for(lambda: not alive(app), 10, "the app to end with its tab")

        page = browser.new_page()
        page.add_init_script(HOOK)
        page.goto(url)
        wait_for(lambda: "Counters" in page_text(page), 30, "a second tab's app to draw")
        app = one_app(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)              # the server dies without a word: its app ends too
        wait_for(lambda: not alive(app), 10, "the app to end with its server")


def unread_bytes(pipe) -> int:
    """Bytes written into ``pipe`` and not yet read."""
    import fcntl
    import struct
    import termios
    return struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def blocked_writing(pid: int, pipe) -> bool:
    """Whether process ``pid``'s main thread sleeps in a write to the full ``pipe``.

    The kernel says where it sleeps (``/proc/PID/wchan``: ``pipe_write``, ``anon_pipe_write``). How many
    bytes make a pipe full is no guide: a pipe holds 16 pages, and how the writes share them varies (a
    stuck app was measured with 58,107 and 60,655 bytes unread). Where the kernel hides wchan ("0"), the
    unread bytes are watched instead: unchanged for a second while the app trains at 20 frames a second.
    """
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        wchan = "0"
    if wchan not in ("", "0"):
        return wchan.endswith("pipe_write") and unread_bytes(pipe) > 0
    before = unread_bytes(pipe)
    time.sleep(1.0)
    return before >= 4096 and unread_bytes(pipe) == before


@pytest.mark.parametrize("server_reads", [True, False])
def test_a_served_app_ends_on_sigterm_while_it_trains(tmp_path, server_reads):
    """The web driver's own SIGTERM handler only posts an exit; bsim's also ends a stuck process: one whose
    server reads its screen (``server_reads``), and one whose server stopped reading, so that the app's
    event loop is blocked writing its screen (measured: it then ignored SIGTERM for good, 3 times in 5
    under load, before bsim's handlers were Python's own)."""
    import threading
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver", COLUMNS="120", ROWS="36")
    app = subprocess.Popen([sys.executable, "-m", "bsim", "run", "--served"], cwd=tmp_path, env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert app.stdout.readline() == b"__GANGLION__\n"      # the web driver has started the app
        if server_reads:
            threading.Thread(target=lambda: app.stdout.read(), daemon=True).start()
            time.sleep(1.5)                                    # training
        else:                                                  # the app writes its screen until the pipe is full
            assert wait_for(lambda: blocked_writing(app.pid, app.stdout), 30, "the app to block on the full pipe")
        assert app.poll() is None
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=EXIT_GRACE + 4) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


#: records the size the page's terminal tells the app (textual-serve's "resize" message) in window.__bsimSizes
SIZE_HOOK = """
(() => {
  const send = WebSocket.prototype.send;
  window.__bsimSizes = [];
  WebSocket.prototype.send = function (data) {
    if (typeof data === "string" && data.startsWith('["resize"')) window.__bsimSizes.push(JSON.parse(data)[1]);
    return send.call(this, data);
  };
})();
"""


@pytest.mark.slow
@pytest.mark.parametrize("server", [("--columns", "120", "--rows", "36")], indirect=True)
def test_serve_for_a_projector_shows_120_by_36_at_a_large_font(server):
    """--columns 120 --rows 36 on a 1920x1080 page: the app is 120x36 cells (not textual-serve's ~240x60 at its
    16 px font), at the largest font that fits (measured: 23 px, 13x30 px cells), centred."""
    proc, url = server
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
        page.add_init_script(HOOK)
        page.add_init_script(SIZE_HOOK)
        page.goto(url)
        wait_for(lambda: "Counters" in page_text(page) and "? help" in page_text(page), 30,
                 "the app and its footer in the page", seen=lambda: page_text(page)[-400:])
        sizes = page.evaluate("window.__bsimSizes")
        font = int(page.evaluate("document.querySelector('#terminal').dataset.fontSize"))
        screen_width = float(page.evaluate("document.querySelector('.xterm-screen').style.width")[:-2])
    assert sizes and sizes[-1] == {"width": 120, "height": 36}, sizes
    assert font >= 20                                   # 1080 px / 36 rows: about 30 px a row
    assert 1920 * 0.75 < screen_width <= 1920           # the cells fill most of the width
