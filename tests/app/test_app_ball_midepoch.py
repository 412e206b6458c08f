"""The ball panel after ] in the middle of a shuffled epoch: the prediction says from which step it holds."""

from __future__ import annotations

from support.app import Driver, drive, panel_text


def test_the_ball_panel_names_the_step_the_prediction_holds_from(tmp_path):
    async def script(d: Driver):
        await d.steps(10)                         # N = 256, B = 8: 80 of 256 seen
        await d.press("right_square_bracket")     # B = 16: 176 left, 11 more steps in this epoch
        await d.steps(1)
        mixed = panel_text(d.app, "ball")
        await d.steps(11)                         # step 22 began a whole epoch at B = 16
        assert d.sim.sampler.batch_in_epoch == 1
        return mixed, panel_text(d.app, "ball")
    _app, (mixed, whole) = drive(tmp_path, script)
    assert "from step 22" in mixed and "reshuffled" in mixed
    assert "from step" not in whole and "reshuffled" in whole
