"""The data panel on the digits: the first test images with the class and the guess at theta, the accuracy per class."""

from __future__ import annotations

import pytest
from support.app import Driver, drive, panel_text

from bsim.scenario import find_scenario


@pytest.mark.slow
def test_digits_panel_shows_images_guesses_and_per_class_accuracy(tmp_path):
    async def script(d: Driver):
        await d.press("d")
        await d.steps(100)
        view = d.app.history.latest.runner.data
        text = panel_text(d.app, "data")
        assert view.kind == "softmax" and view.extra["images"].shape[1:] == (8, 8)
        assert "test accuracy at θ" in text and "(measured)" in text and "per class" in text
        assert any(ch in text for ch in "░▒▓█▀▄")                       # the digits are drawn
        first = f"{int(view.truth[0])}→{int(view.predicted[0])}"
        assert first in text and "class → guess at θ" in text
        assert f"{view.extra['accuracy']:.3f}" in text
    drive(tmp_path, script, sc=find_scenario("digits"))
