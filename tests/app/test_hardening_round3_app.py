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
