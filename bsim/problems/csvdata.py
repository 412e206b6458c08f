"""Reading a user's data from CSV: a header row, feature columns and a column ``y``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from bsim.errors import BsimInputError


def read_xy(path: Path, binary: bool = False, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and target of every row, as float64 arrays; errors name file and line."""
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError:
        raise BsimInputError(f"{path}: cannot open data file; expected a CSV with a header row and a column y") from None
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise BsimInputError(f"{path}:1: empty file; expected a header row with a column named y")
        header = [h.strip() for h in header]
        if "y" not in header:
            raise BsimInputError(f"{path}:1: no column named y in the header; expected the target in a column y")
        if len(header) < 2:
            raise BsimInputError(f"{path}:1: only the column y; expected at least one feature column")
        iy = header.index("y")
        xs, ys = [], []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise BsimInputError(f"{path}:{line_no}: {len(row)} fields; expected {len(header)} as in the header")
            try:
                vals = [float(c) for c in row]
            except ValueError:
                raise BsimInputError(f"{path}:{line_no}: a value is not a number; expected numbers in every column") from None
            if not all(math.isfinite(v) for v in vals):
                raise BsimInputError(f"{path}:{line_no}: a value is not finite; expected finite numbers")
            if binary and vals[iy] not in (0.0, 1.0):
                raise BsimInputError(f"{path}:{line_no}: y = {row[iy].strip()}; expected 0 or 1 for logreg")
            ys.append(vals[iy])
            xs.append(vals[:iy] + vals[iy + 1:])
    if len(ys) < 2 and n_features is None:
        raise BsimInputError(f"{path}: {len(ys)} data rows; expected at least 2")
    X = np.asarray(xs, dtype=np.float64).reshape(len(ys), len(header) - 1)
    if n_features is not None and X.shape[1] != n_features:
        raise BsimInputError(f"{path}:1: {X.shape[1]} feature columns; expected {n_features} as in the training data")
    return X, np.asarray(ys, dtype=np.float64)
