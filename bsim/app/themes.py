"""Themes: a high-contrast light theme for projectors, and the chart palette read from the theme in force.

The charts name their colours (``axis``, ``blue``, ``orange``...; bsim.app.widgets.canvas.COLORS).
Under Textual's default dark theme they keep bsim's own palette, tuned for it; under any
other theme each name takes the theme variable of the same role (``THEME_ROLES``), blended
onto the theme's background when it has an alpha, so a light theme gets dark lines.
"""

from __future__ import annotations

from textual.color import Color
from textual.theme import Theme

#: the theme the app starts in, whose chart colours are bsim's own palette
DEFAULT_THEME = "textual-dark"
PROJECTOR_THEME = "bsim-projector"

#: black on white, saturated dark colours that stay apart on a washed-out projector
#: (each pair of series colours differs in hue and in lightness)
PROJECTOR = Theme(
    name=PROJECTOR_THEME,
    primary="#0033a0",       # blue: train loss, |G|
    secondary="#7b1fa2",     # purple: batch-size marks, B_simple
    accent="#c04000",        # orange: test loss, |g_B|
    warning="#7a5c00",       # yellow
    error="#c00018",         # red
    success="#00701c",       # green
    foreground="#000000",
    background="#ffffff",
    surface="#ffffff",
    panel="#e4e4e4",
    dark=False,
    variables={
        "text-primary": "#0033a0", "text-secondary": "#7b1fa2", "text-accent": "#c04000",
        "text-warning": "#7a5c00", "text-error": "#c00018", "text-success": "#00701c",
        "text-muted": "#333333", "foreground-muted": "#404040", "foreground-disabled": "#7a7a7a",
        "footer-key-foreground": "#0033a0", "border": "#000000",
    },
)

#: each chart colour name -> (the theme variable it takes, the alpha it is drawn at)
THEME_ROLES: dict[str, tuple[str, float]] = {
    "axis": ("foreground-muted", 1.0),
    "blue": ("text-primary", 1.0),
    "orange": ("text-accent", 1.0),
    "green": ("text-success", 1.0),
    "red": ("text-error", 1.0),
    "purple": ("text-secondary", 1.0),
    "grey": ("foreground", 0.45),
    "white": ("foreground", 1.0),
    "yellow": ("text-warning", 1.0),
    "contour": ("foreground", 0.25),
    "pink": ("text-error", 0.55),
}


def chart_palette(theme_name: str, variables: dict[str, str]) -> dict[str, str] | None:
    """The chart colours (name -> "#rrggbb") of a theme, from its CSS variables; None: bsim's own."""
    if theme_name == DEFAULT_THEME:
        return None
    background = _parse(variables.get("background"), Color(0, 0, 0))
    palette = {}
    for name, (variable, alpha) in THEME_ROLES.items():
        color = _parse(variables.get(variable), None) or _parse(variables.get("foreground"), Color(128, 128, 128))
        color = color.multiply_alpha(alpha)
        palette[name] = (background + color).hex6   # an alpha is blended onto the background
    return palette


def _parse(text: str | None, default):
    try:
        return Color.parse(text) if text else default
    except Exception:  # noqa: BLE001 - "auto 60%" and other computed values: fall back
        return default


def solid(text: str | None, under: str | None) -> str:
    """A theme colour as "#rrggbb", an alpha blended onto ``under`` (black when that is unknown too)."""
    ground = _parse(under, Color(0, 0, 0))
    return (ground + _parse(text, ground)).hex6
