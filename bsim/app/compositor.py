"""The screen as a terminal receives it: the one place that reaches into Textual's private compositor.

Textual has no public call for a screen's full render as Rich segments (``App.export_screenshot``
gives SVG only); the asciicast export and the tests need it as text. ``screen._compositor`` and
``app._background_screens`` are private to Textual 8: isolated here, and checked by
tests/app/test_app_compositor.py, so that a Textual upgrade that moves them breaks one function.
"""

from __future__ import annotations


def screen_update(app, with_background: bool = False):
    """A Rich renderable of the whole current screen (with the screens below it when a modal is open and
    ``with_background``)."""
    stack = app._background_screens if with_background else None
    return app.screen._compositor.render_update(full=True, screen_stack=stack)
