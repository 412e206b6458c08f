"""The keymap is the one list of keys: every app's bindings, its help, its palette and the README's table
are read from it, and none of them binds a key twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.screen import Screen

from bsim.actions import CHAIN_COUNTS, MOMENTA
from bsim.app import keymap
from bsim.app.app import BsimApp
from bsim.app.commands import palette_commands
from bsim.app.race.app import RaceApp
from bsim.app.race.help import race_help_text
from bsim.app.screens import help_text
from bsim.app.sweep_screen import SweepApp, SweepScreen
from bsim.scenario import LR_SCALINGS, PROBLEMS, SAMPLINGS

README = Path(__file__).resolve().parents[2] / "README.md"
APPS = {keymap.MAIN: BsimApp, keymap.RACE: RaceApp, keymap.SWEEP_APP: SweepApp, keymap.SWEEP: SweepScreen}
HELP = {keymap.MAIN: help_text, keymap.RACE: race_help_text}


def bound(cls, base=App) -> dict[str, list[str]]:
    """key -> the actions ``cls`` binds it to (its own, its bases' and Textual's), less those of ``base``."""
    ours = cls._merge_bindings().key_to_bindings
    theirs = base._merge_bindings().key_to_bindings if base is not None else {}
    return {key: [b.action for b in bindings if (key, b.action) not in
                  {(key, t.action) for t in theirs.get(key, [])}] for key, bindings in ours.items()}


def expected(app: str) -> set[tuple[str, str]]:
    """(key, action) of every binding the keymap gives ``app``."""
    pairs = set()
    for row in keymap.rows(app):
        if not row.bound or not row.keys:
            continue
        if row.each:
            pairs |= {(key, f"{row.action}({arg!r})") for key, arg, _ in row.each if key}
        else:
            pairs |= {(key.strip(), row.action) for key in row.keys.split(",")}
    return pairs


@pytest.mark.parametrize("app", list(APPS))
def test_every_binding_of_each_app_comes_from_the_keymap(app):
    cls = APPS[app]
    base = App if issubclass(cls, App) else Screen
    have = {(key, action) for key, actions in bound(cls, base).items() for action in actions}
    assert have == expected(app)


@pytest.mark.parametrize("app", list(APPS))
def test_no_key_is_bound_twice_in_one_app(app):
    cls = APPS[app]
    twice = {key: actions for key, actions in bound(cls, None).items() if len(actions) > 1}
    assert twice == {}
    keys = [key for row in keymap.rows(app) if row.bound for key in row.keys.split(",") if key]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("app", [keymap.MAIN, keymap.RACE])
def test_the_help_lists_every_row_with_a_key(app):
    text = HELP[app]().plain
    lines = text[text.index("\nKeys\n"):].splitlines()
    listed = [(line[:10].strip(), line[10:]) for line in lines if line.startswith("  ")]
    assert listed == [(row.shown_keys, row.help) for row in keymap.rows(app) if row.keys and not row.hidden]
    hidden = [row for row in keymap.rows(app) if row.hidden]
    assert all(f"  {row.keys.split(',')[0]} " not in text for row in hidden)


@pytest.mark.parametrize("app", [keymap.MAIN, keymap.RACE])
def test_the_palette_offers_every_row_and_says_its_key(app):
    commands = list(palette_commands(APPS[app], app))     # the class: its actions, unbound
    titles = [c.title for c in commands]
    assert len(titles) == len(set(titles))
    for row in keymap.rows(app):
        if row.hidden or not row.bound:     # f and F; ctrl+p, the palette itself
            continue
        assert row.title is not None, row
        mine = [c for c in commands if c.callback.func is getattr(APPS[app], f"action_{row.action}")]
        assert mine, row
        if row.each:
            assert [c.title for c in mine if c.title.startswith(row.title.format(""))] == \
                [row.title.format(shown) for _, _, shown in row.each]
        else:
            assert any(c.title == row.title and c.help.endswith(f"({row.shown_keys})" if row.keys else row.help)
                       for c in mine), row
    assert not [row for row in keymap.rows(app) if row.keys and f"({row.shown_keys})" in row.help]  # added once


def test_option_lists_are_written_from_their_tuples():
    text = help_text().plain
    assert f"({', '.join(LR_SCALINGS)})" in text and f"({', '.join(SAMPLINGS)})" in text
    assert f"({', '.join(f'{m:g}' for m in MOMENTA)})" in text and f"({', '.join(PROBLEMS)})" in text
    assert f"{', '.join(map(str, CHAIN_COUNTS[:-1]))} or {CHAIN_COUNTS[-1]} chains" in text
    sizes = list(keymap.PRESETS.values())
    assert sizes == [2 ** k for k in range(9)] and f"batch size 1, 2, 4, ... {sizes[-1]}" in text


def test_the_markdown_table_has_a_row_per_key():
    table = keymap.markdown_table(keymap.MAIN).splitlines()
    assert table[:2] == ["| key | what it does |", "| --- | --- |"]
    assert table[2:] == [f"| {' '.join(f'`{k}`' for k in keys.split())} | {what} |"
                         for keys, what in keymap.help_rows(keymap.MAIN)]
    assert "| `]` | double the batch size |" in table and "| `1-9` | batch size 1, 2, 4, ... 256 |" in table


def test_the_readme_key_tables_are_the_keymaps():
    text = README.read_text(encoding="utf-8")
    tables = {"keys": keymap.MAIN, "race-keys": keymap.RACE}
    starts = {marker: f"<!-- {marker}: generated from bsim/app/keymap.py -->" for marker in tables}
    assert starts["keys"] in text, f"README.md has no {starts['keys']} line"
    for marker, app in tables.items():
        if starts[marker] in text:       # the race's table is optional
            section = text.split(starts[marker], 1)[1].split(f"<!-- /{marker} -->", 1)[0]
            assert section.strip() == keymap.markdown_table(app), marker
