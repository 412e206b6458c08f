"""The footer of bsim's screens: Textual's, showing its keys from the first frame.

Textual's footer draws its keys only once the app has had focus. Under ``bsim serve`` the web driver
starts the app blurred, so the footer stayed blank until the first click in the page (a projector's
audience saw no keys). bsim's screens have no focusable widget whose keys come and go, so the footer
draws the screen's keys whether or not the app has focus.
"""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    """Owns nothing beyond Textual's Footer: it redraws when the screen's keys change, focus or not."""

    def bindings_changed(self, screen) -> None:
        self._bindings_ready = True
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self.recompose)
