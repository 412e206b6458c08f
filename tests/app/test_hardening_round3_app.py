"""The app against hostile answers (issue 19, item 4): a name over 255 bytes in "Open scenario..." of a served
app was checked outside the try, and the tab's app died (under the pilot with the server's file paths)."""

from __future__ import annotations

import pytest
from support.app import Driver, drive, palette, small

LONG = "y" * 300


@pytest.mark.slow
@pytest.mark.parametrize("served", [True, False], ids=["served", "terminal"])
def test_a_name_over_255_bytes_in_open_scenario_is_a_notice_and_the_run_goes_on(tmp_path, monkeypatch, served):
    monkeypatch.chdir(tmp_path)

    async def script(d: Driver):
        await palette(d, "Open scenario...")
        await d.type_answer(LONG)
        assert d.errors, "no notice"
        assert "too long" in d.errors[-1] and "y" * 13 not in d.errors[-1], d.errors[-1]
        assert d.sim.problem.kind == "linreg"
        await palette(d, "Open scenario...")
        await d.type_answer("default")                  # the app still answers
        assert d.notice.startswith("opened default")
    drive(tmp_path, script, sc=small(), served=served)


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(2))
def test_a_key_burst_that_quits_through_the_race_palette_prints_no_traceback(tmp_path, attempt):
    """ctrl+p, 'quit', then Enter and ~200 more keys in one write to the terminal, as a paste delivers them: the
    palette's searches, timers and key bindings after its dismissal raised NoMatches ('CommandList') on quit
    in 2 of 4 runs before."""
    import pexpect
    from support.terminal import ANSI, Terminal
    term = Terminal(("race", "default", "--batch-sizes", "8,64,512"), tmp_path)
    term.wait_for("step")
    tail = "".join("jkqx?ab\x1b[B\x1b[A"[i % 11] for i in range(190))
    term.child.send("\x10quit")
    term.wait_for("Quit")                 # the palette found it; Enter and the rest arrive in one write
    term.child.send("\r\r" + tail)
    term.child.expect(pexpect.EOF, timeout=60)
    term.child.wait()
    screen = ANSI.sub("", term.text + (term.child.before or ""))
    assert "NoMatches" not in screen and "Traceback" not in screen, screen[-1500:]
    assert term.child.exitstatus == 0
