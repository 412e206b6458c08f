"""The panels of the app, one module each; all draw from ``bsim.app.history.FrameBuffer``."""
