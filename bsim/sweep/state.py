"""A sweep's state on disk: the CSV (one row per finished task) and its curves folder.

``sweep.csv`` is rewritten atomically (bsim.atomic) after every finished task,
rows sorted by (batch_size, seed, lr), so a killed sweep leaves the rows done
so far and a rerun of the same command skips them. Beside it,
``sweep.curves/`` holds one small CSV per task (its downsampled train and
test curve), each written once, atomically, before its row.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from bsim.atomic import atomic_write_text
from bsim.errors import BsimInputError, printable, quote, read_user_text

TASK_COLUMNS = ("batch_size", "seed", "lr")
RESULT_COLUMNS = ("reached", "diverged", "stop", "steps", "samples", "steps_run", "target_loss", "train_loss", "test_loss",
                  "b_simple", "b_noise", "check_every", "wall_s")
IDENTITY_COLUMNS = ("target", "on", "lr_rule", "max_steps", "scenario", "problem", "scenario_hash")
#: added later, after the rest (a CSV without them still reads and resumes: readers select columns by name):
#: the accuracies where the task stopped (classifiers), and the time to target from this machine's
#: calibrated seconds per step at the task's B (bsim.sweep.calibrate; empty with --no-calibration); m_star:
#: Ma, Bassily & Belkin's critical batch max|x_i|^2 / lambda_max(H) of the task's data, for least squares
#: that interpolates (rank X = N <= d; bsim.stats.interpolation), empty otherwise; inv_lr_cb and kramers_steps:
#: --on escape (landscapes, bsim.sweep.escape): 1 / (lr c_B) and Kramers' steps for the target fraction to escape
LATER_COLUMNS = ("train_acc", "test_acc", "seconds_per_step", "time_to_target", "calibration_device",
                 "calibration_steps", "m_star", "inv_lr_cb", "kramers_steps")
COLUMNS = TASK_COLUMNS + RESULT_COLUMNS + IDENTITY_COLUMNS + LATER_COLUMNS
REQUIRED_COLUMNS = TASK_COLUMNS + RESULT_COLUMNS + IDENTITY_COLUMNS
CURVE_COLUMNS = ("step", "samples", "train_loss", "test_loss", "b_simple", "b_noise")

_INT = {"batch_size", "seed", "steps", "samples", "steps_run", "check_every", "max_steps", "calibration_steps"}
_FLOAT = {"lr", "target_loss", "train_loss", "test_loss", "b_simple", "b_noise", "wall_s", "train_acc", "test_acc",
          "seconds_per_step", "time_to_target", "m_star", "inv_lr_cb", "kramers_steps"}
_BOOL = {"reached", "diverged"}


def cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def parse_cell(col: str, text: str):
    if text == "":
        return None
    if col in _INT:
        return int(text)
    if col in _FLOAT:
        return float(text)
    if col in _BOOL:
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    return text


def curves_dir(csv_path: str | Path) -> Path:
    p = Path(csv_path)
    return p.with_name(p.stem + ".curves")


def row_key(row: dict) -> tuple[int, int, float]:
    return (row["batch_size"], row["seed"], row["lr"])


def drop_duplicates(rows: list[dict]) -> tuple[list[dict], int]:
    """The rows with one per task (batch_size, seed, lr), the first of each kept; and how many were dropped."""
    seen, kept = set(), []
    for r in rows:
        if row_key(r) not in seen:
            seen.add(row_key(r))
            kept.append(r)
    return kept, len(rows) - len(kept)


def rows_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sorted(rows, key=row_key):
        w.writerow([cell(r.get(c)) for c in COLUMNS])
    return buf.getvalue()


def write_rows(path: str | Path, rows: list[dict]) -> None:
    atomic_write_text(path, rows_text(rows))


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a sweep CSV (every column of COLUMNS; a LATER_COLUMNS one the file lacks is None);
    a BsimInputError naming the file and line when it is not one. Columns are selected by name."""
    p = Path(path)
    text = read_user_text(p, "a sweep CSV written by `bsim sweep --out`")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or not set(REQUIRED_COLUMNS) <= set(header) or len(set(header)) != len(header):
        raise BsimInputError(f"{p}:1: not a bsim sweep CSV; expected the header {','.join(COLUMNS)}")
    known = [(i, c) for i, c in enumerate(header) if c in COLUMNS]
    rows = []
    for n, rec in enumerate(reader, start=2):
        if len(rec) != len(header):
            raise BsimInputError(f"{p}:{n}: got {len(rec)} cells, expected {len(header)}")
        try:
            row = {**dict.fromkeys(LATER_COLUMNS), **{c: parse_cell(c, rec[i]) for i, c in known}}
        except ValueError:
            raise BsimInputError(f"{p}:{n}: a cell is not of its column's type (numbers, true/false)") from None
        for col, (ok, expected) in _TASK_CHECKS.items():
            if not ok(row[col]):
                raise BsimInputError(f"{p}:{n}: {col} {quote(rec[header.index(col)])}: expected {expected}")
        rows.append({c: printable(v) if isinstance(v, str) else v for c, v in row.items()})
    return rows


#: what a task's columns must hold (a hand-edited CSV with lr = 0 broke the analysis; seed -1 resumed silently)
_TASK_CHECKS = {
    "batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "seed": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "lr": (lambda v: isinstance(v, float) and math.isfinite(v) and v > 0, "a finite number > 0"),
}


def write_curve(folder: Path, name: str, points: list[tuple]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CURVE_COLUMNS)
    for pt in points:
        w.writerow([cell(v) for v in pt])
    atomic_write_text(folder / f"{name}.csv", buf.getvalue())


def read_curve(folder: Path, name: str) -> dict[str, list] | None:
    """Columns of a task's curve; None when the file is missing or unreadable."""
    try:
        text = (folder / f"{name}.csv").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != CURVE_COLUMNS:
        return None
    out: dict[str, list] = {c: [] for c in CURVE_COLUMNS}
    try:
        for rec in rows[1:]:
            for c, v in zip(CURVE_COLUMNS, rec):
                out[c].append(None if v == "" else float(v))
    except ValueError:
        return None
    return out


def finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)
