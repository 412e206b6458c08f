"""Reading a user's data from CSV: a header row, feature columns and a column ``y``."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from bsim.errors import MAX_DATA_BYTES, BsimInputError, quote, read_user_text


def read_xy(path: Path, binary: bool = False, n_features: int | None = None,
            classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and target of every row, as float64 arrays; errors name the file and the line.

    ``binary`` asks for y in {0, 1} (logreg), ``classes`` = K for y in {0, ..., K-1}
    (softmax). ``n_features`` (a test set) asks
    for that many feature columns and at least one row (a training set needs two).
    """
    # one reader for every file a user names: a regular file, at most MAX_DATA_BYTES; -sig: a spreadsheet's
    # byte-order mark is not part of the header
    text = read_user_text(path, "a CSV with a header row and a column y", limit=MAX_DATA_BYTES, encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _parse(reader, path, binary, n_features, classes)
    except csv.Error as exc:
        raise BsimInputError(f"{path}:{reader.line_num}: not a readable CSV ({exc}); "
                             f"expected a header row and rows of numbers") from None


def _parse(reader, path: Path, binary: bool, n_features: int | None,
           classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    header = next(reader, None)
    if not header:
        raise BsimInputError(f"{path}:1: empty first line; expected a header row with a column named y")
    header = [h.strip() for h in header]
    if "y" not in header:  # no CSV of ours: quote none of it (it may be /etc/shadow or /proc/self/environ)
        raise BsimInputError(f"{path}:1: got {len(header)} column(s), none named y; "
                             f"expected a CSV whose header row names the target column y")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise BsimInputError(f"{path}:1: got the column {quote(name)} twice; expected distinct column names")
        seen.add(name)
    if len(header) < 2:
        raise BsimInputError(f"{path}:1: got only the column y; expected at least one feature column")
    if n_features is not None and len(header) - 1 != n_features:
        raise BsimInputError(f"{path}:1: got {len(header) - 1} feature columns; "
                             f"expected {n_features} as in the training data")
    iy = header.index("y")
    xs, ys = [], []
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise BsimInputError(f"{path}:{line}: got {len(row)} fields; expected {len(header)} as in the header")
        try:
            vals = [float(c) for c in row]
        except ValueError:
            bad = next(c for c in row if not _is_number(c))
            raise BsimInputError(f"{path}:{line}: got {quote(bad.strip())}; expected a number in every column") from None
        if not all(math.isfinite(v) for v in vals):
            raise BsimInputError(f"{path}:{line}: got a value that is not finite; expected finite numbers")
        if binary and vals[iy] not in (0.0, 1.0):
            raise BsimInputError(f"{path}:{line}: y: got {quote(vals[iy])}; expected 0 or 1 for logreg")
        if classes is not None and not (vals[iy].is_integer() and 0 <= vals[iy] < classes):
            raise BsimInputError(f"{path}:{line}: y: got {quote(vals[iy])}; expected a class label from 0 to "
                                 f"{classes - 1} for softmax with classes = {classes}")
        ys.append(vals[iy])
        xs.append(vals[:iy] + vals[iy + 1:])
    need = 2 if n_features is None else 1
    if len(ys) < need:
        raise BsimInputError(f"{path}: got {len(ys)} data rows; expected at least {need}")
    X = np.asarray(xs, dtype=np.float64).reshape(len(ys), len(header) - 1)
    return X, np.asarray(ys, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
