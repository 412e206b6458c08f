"""A linear model's data from CSV files: the seeded train/test split, standardizing, the intercept column.

The scenario's ``[problem]`` says what happens to the rows of ``data``:

- ``test_fraction = f``: round(f N) rows are held out as the test split. The
  split is named by ``split_seed = s``: the rows are ordered by the SHA-256 of
  ``"s:i"`` (i the row's index from 0, as ASCII) and the first round(f N) of
  that order are the test rows; the training and test rows keep the file's
  order. It is the same on every machine and every version of every library.
- ``standardize = true``: every feature is centred and scaled by the mean and
  the standard deviation (1/N, over the training rows only; the test rows get
  the same affine map). A feature constant on the training rows is centred only.
- ``intercept = true``: a column of ones is appended (after standardizing), so
  that theta's last component is the intercept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from bsim.errors import BsimInputError
from bsim.problems.csvdata import read_xy


@dataclass
class Dataset:
    X: np.ndarray            # training rows (N x d, float64), after standardizing and the intercept column
    y: np.ndarray
    X_test: np.ndarray       # test rows (0 x d when there are none)
    y_test: np.ndarray
    source: str              # the panel's words for where the data come from
    X_test_raw: np.ndarray | None = None   # the test rows as in the file (the data panel draws digits from them)


def split_order(n: int, seed: int) -> np.ndarray:
    """The rows 0..n-1 ordered by sha256(f"{seed}:{i}"): the first rows of this order are the test split."""
    keys = [hashlib.sha256(f"{seed}:{i}".encode("ascii")).digest() for i in range(n)]
    return np.asarray(sorted(range(n), key=keys.__getitem__), dtype=np.int64)


def test_rows(n: int, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of the test rows: round(fraction n) of them, chosen by ``split_order``."""
    mask = np.zeros(n, dtype=bool)
    mask[split_order(n, seed)[: int(round(fraction * n))]] = True
    return mask


def standardize(X: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(X - mean) / std with the training rows' mean and std (1/N); a constant column is centred only."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, (X_test - mean) / std


def load(spec, data_path, test_path, kind: str) -> Dataset:
    """The rows of the scenario's data file(s), split, standardized and with the intercept as ``spec`` says."""
    binary = kind == "logreg"
    classes = spec.classes if kind == "softmax" else None
    X, y = read_xy(data_path, binary=binary, classes=classes)
    source = f"data from {spec.data}"
    if test_path is not None:
        Xt, yt = read_xy(test_path, binary=binary, n_features=X.shape[1], classes=classes)
    elif spec.test_fraction:
        held = test_rows(len(y), spec.test_fraction, spec.split_seed)
        if held.all() or (~held).sum() < 2:
            raise BsimInputError(f"{data_path}: test_fraction = {spec.test_fraction:g} of {len(y)} rows leaves "
                                 f"{int((~held).sum())} training rows; expected at least 2")
        X, y, Xt, yt = X[~held], y[~held], X[held], y[held]
        source += f", {len(y)} train / {len(yt)} test (split_seed {spec.split_seed})"
    else:
        Xt, yt = np.zeros((0, X.shape[1])), np.zeros(0)
    if classes is not None:
        counts = np.bincount(y.astype(np.int64), minlength=classes)
        if (counts == 0).any():
            k = int(np.flatnonzero(counts == 0)[0])
            raise BsimInputError(f"{data_path}: class {k} has no example in the training split "
                                 f"({len(y)} rows); expected every class from 0 to {classes - 1} among the "
                                 f"training rows (another split_seed or test_fraction, or fewer classes)")
    raw = Xt
    if spec.standardize:
        X, Xt = standardize(X, Xt)
        source += ", standardized"
    if spec.intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
        Xt = np.hstack([Xt, np.ones((Xt.shape[0], 1))])
    return Dataset(X, y, Xt, yt, source, raw)
