"""A snapshot of the landscape panel (pytest-textual-snapshot) on a hand-made landscape (tests/support/landscape.py):
the curve with the chains' histogram, the occupancy chart, the measured rate against Kramers with its error bar.

The frames are made in the test, so the picture depends on nothing but the panel's drawing.
Update after an intended change of the panel: pytest tests/app/test_landscape_snapshot.py --snapshot-update
"""

from __future__ import annotations

import numpy as np
from textual.app import App

from bsim.app.widgets.landscape import LandscapePanel
from support.landscape import fed


class PanelApp(App):
    """The landscape panel alone, at the size it has in bsim run's grid at 120x36."""

    CSS = "LandscapePanel { width: 43; height: 16; }"

    def compose(self):
        rng = np.random.default_rng(0)
        theta = np.concatenate([rng.normal(-1, 0.1, 48), rng.normal(1.5, 0.3, 16)])
        yield LandscapePanel(fed(theta, b=1), id="landscape")


def test_the_landscape_panel_43x16(snap_compare):
    assert snap_compare(PanelApp(), terminal_size=(43, 16))
