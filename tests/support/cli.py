"""Running bsim in the tests: the command in this process (its exit code and what it printed), its CSV files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

from bsim.cli import main


class Ran(NamedTuple):
    """What ``bsim ARGV`` gave: its exit code and what it printed."""
    code: int
    out: str
    err: str


def run_cli(capsys, *argv) -> Ran:
    """``bsim ARGV`` in this process (an argument error's SystemExit is caught: its code is the exit code)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return Ran(code, out, err)


def read_table(path: Path | str) -> list[list[str]]:
    """A CSV file's lines as lists of cells, its header first."""
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def read_rows(path: Path | str) -> list[dict[str, str]]:
    """A CSV file's rows as dicts by column name."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
