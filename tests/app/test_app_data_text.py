"""The character LSTM's data panel (d): the text the model writes at θ beside the text's own continuation."""

from __future__ import annotations

import pytest
from support.app import Driver, drive

from bsim.app.widgets.data_text import NEWLINE
from bsim.scenario import bundled_dir, find_scenario


@pytest.mark.slow
def test_the_data_panel_shows_the_generated_text_and_the_texts_own(tmp_path):
    test_text = (bundled_dir() / "data" / "declaration-test.txt").read_text()

    async def script(d: Driver):
        await d.press("d")
        await d.steps(30)
        view = d.app.history.latest.runner.data
        sim = d.app.runner.sim
        assert view.kind == "text"
        e = view.extra
        assert e["prompt"] == test_text[:16] and e["truth"] == test_text[16:16 + len(e["truth"])]
        assert e["greedy"] == sim.problem.generate(sim.theta, sim.problem.test_ids[:16], len(e["greedy"]))
        assert e["accuracy"] == pytest.approx(float(sim.problem.test_accuracy(sim.theta)))
        panel = d.app.query_one("#data")
        text = "\n".join(panel.render_line(y).text for y in range(panel.size.height))
        lines = text.splitlines()

        def line(label):
            return next(ln for ln in lines if ln.startswith(label))
        assert line("prompt").startswith("prompt  " + test_text[:16].replace("\n", NEWLINE) + "  (test text)")
        assert line("greedy").startswith("greedy  " + e["greedy"][:20].replace("\n", NEWLINE))
        assert line("T=0.8").startswith("T=0.8   " + e["drawn"][:20].replace("\n", NEWLINE))
        assert line("text").startswith("text    " + test_text[16:36].replace("\n", NEWLINE))
        assert line("next-char").startswith(f"next-char acc {100 * e['accuracy']:.1f}% (test, measured)")
    sc = find_scenario("char-lstm")
    sc.problem.hidden = 8
    drive(tmp_path, script, sc=sc)
