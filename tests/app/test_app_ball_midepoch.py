"""The ball panel after ] in the middle of a shuffled epoch: the step about which the new ball is reached."""

from __future__ import annotations

from support.app import Driver, drive, panel_text


def test_the_ball_panel_names_the_step_the_prediction_holds_from(tmp_path):
    async def script(d: Driver):
        await d.steps(10)                         # N = 256, B = 8: 80 of 256 seen
        await d.press("right_square_bracket")     # B = 16: 176 left, 11 more steps in this epoch
        await d.steps(1)
        mixed = panel_text(d.app, "ball"), d.sim.frame(timing=False).ball.settles_at
        await d.steps(11)                         # step 22 began a whole epoch at B = 16
        assert d.sim.sampler.batch_in_epoch == 1
        return mixed, panel_text(d.app, "ball")
    _app, ((mixed, settles_at), whole) = drive(tmp_path, script)
    assert settles_at >= 22 and f"≈ at step {settles_at}" in mixed and "reshuffled" in mixed
    assert "≈ at step" not in whole and "reshuffled" in whole
