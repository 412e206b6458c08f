"""Recordings made by bsim 0.1.0 before the core was restructured replay to the same rows and pass their check.

tests/data/legacy/*.toml were written by that bsim (linreg, logreg and the LSTM from a
scenario's timeline with batch-size, sampling, lr, momentum and lr-scaling changes, and
``app.toml`` from the runner's own recorder: user actions, a caption and a reset);
the .csv beside each is its headless replay then, with --no-timing.
"""

import csv
from pathlib import Path

import pytest

from bsim.cli import main

LEGACY = Path(__file__).parent / "data" / "legacy"
CASES = [("lin", 10), ("log", 10), ("app", 10), ("lstm", 4)]


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name,every", CASES)
def test_a_recording_of_the_old_bsim_replays_to_the_same_rows(name, every, tmp_path, capsys):
    out = tmp_path / f"{name}.csv"
    code = main(["replay", str(LEGACY / f"{name}.toml"), "--headless", "--no-timing", "--every", str(every),
                 "--metrics", str(out)])
    err = capsys.readouterr().err
    assert code == 0
    assert "differs" not in err and "no check" not in err      # the recorded check matched
    old, new = rows(LEGACY / f"{name}.csv"), rows(out)
    assert len(new) == len(old) > 10
    for a, b in zip(old, new):
        assert {k: b[k] for k in a} == a
