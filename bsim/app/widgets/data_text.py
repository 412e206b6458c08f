"""The data panel of the character LSTM: the text the model writes at θ, beside the text's own continuation.

Reads ``DataView.extra`` of kind "text" (``bsim.dataview.text_view``): the prompt (the split's first T
characters), the greedy line (temperature 0), a line drawn at a stated temperature with a fixed seed,
the text's own continuation, and the next-character accuracy (measured on that split). One line each
in a small panel; lines left over continue the three texts, then say what greedy and drawn mean.
"""

from __future__ import annotations

from textwrap import wrap

from bsim.app.widgets.panel import text_strip

#: how a line break of the text is shown
NEWLINE = "⏎"
LABEL = 8


def _chunks(text: str, width: int, lines: int) -> list[str]:
    """The text (line breaks shown as NEWLINE) cut into at most ``lines`` pieces of ``width`` characters."""
    flat = text.replace("\n", NEWLINE)
    return [flat[i:i + width] for i in range(0, len(flat), width)][:max(lines, 1)]


def build_text(view, width: int, height: int):
    e = view.extra
    inner = max(width - LABEL - 1, 8)
    accuracy = text_strip([("next-char acc ", "axis"), (f"{100 * e['accuracy']:.1f}%", "orange"),
                           (f" ({e['split']}, measured)", "axis")], width)
    sizes = f"{e['vocab']} characters · unigram entropy {e['entropy']:.2f} nats"
    note = wrap(f"greedy: temperature 0 · T={e['temperature']:g}: drawn with seed {e['seed']} · text: what the "
                f"{e['split']} text says", max(width, 8))
    blocks = [("greedy", e["greedy"], "blue"), (f"T={e['temperature']:g}", e["drawn"], "green"),
              ("text", e["truth"], "orange")]
    if height < 5:                       # the essentials: what it writes, what the text says, how well
        blocks = [blocks[0], blocks[2]][:max(height - 1, 1)]
    spare = max(height - 2 - len(blocks), 0)
    more_sizes = spare >= 1
    spare -= more_sizes
    with_note = spare >= len(note) + len(blocks)
    spare -= len(note) if with_note else 0
    extra = spare // len(blocks)
    out = [text_strip([("prompt".ljust(LABEL), "axis"), (e["prompt"].replace("\n", NEWLINE), "white"),
                       (f"  ({e['split']} text)", "axis")], width)] if height >= 5 else []
    for label, text, color in blocks:
        for i, line in enumerate(_chunks(text, inner, 1 + extra)):
            out.append(text_strip([((label if i == 0 else "").ljust(LABEL), "axis"), (line, color)], width))
    if with_note:
        out += [text_strip([(line, "axis")], width) for line in note]
    out.append(accuracy)
    if more_sizes:
        out.append(text_strip([(sizes, "axis")], width))
    return out[:height]
