"""What the data panel shows, computed by the runner (the views never touch the model).

``data_view(problem, theta, points)`` returns a ``DataView`` of plain numpy arrays:
- linreg: up to ``points`` training points as (x_1, y) and the fits at theta and theta*
  along x_1 with the other features at their mean (d = 1: the fits themselves);
- logreg: up to ``points`` points (x_1, x_2) by class and the decision boundary
  theta . x = 0 at theta and theta* (d = 2);
- lstm: a few test sequences, the next value's truth against the prediction at theta.
Anything else (d > 2, no data) is a DataView with ``note`` saying why there is nothing to draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class DataView:
    """Arrays for the data panel (None where the problem has none)."""

    kind: str
    note: str = ""
    x: np.ndarray | None = None          # (n,) feature 1, or (n, 2) features 1 and 2 (logreg)
    y: np.ndarray | None = None          # (n,) targets or classes (0 / 1)
    x_mean: np.ndarray | None = None     # the features' means (linreg: the other features are held there)
    sequences: np.ndarray | None = None  # (k, T) test inputs (lstm)
    truth: np.ndarray | None = None      # (k,) the next value
    predicted: np.ndarray | None = None  # (k,) the prediction at theta
    extra: dict = field(default_factory=dict)


def data_view(problem, theta: torch.Tensor, points: int = 200, sequences: int = 3) -> DataView:
    """The data and the model's answer at theta (see the module docstring)."""
    kind = getattr(problem, "kind", type(problem).__name__.lower())
    with torch.no_grad():
        if hasattr(problem, "hidden"):     # the LSTM
            X = problem.X_test if problem.X_test is not None else problem.X
            y = problem.y_test if problem.y_test is not None else problem.y
            k = min(sequences, X.shape[0])
            pred = problem.predict(theta, X[:k])
            return DataView("lstm", sequences=X[:k].double().cpu().numpy(), truth=y[:k].double().cpu().numpy(),
                            predicted=pred.double().cpu().numpy())
        X, y = problem.X, problem.y
        d = X.shape[1]
        n = min(points, X.shape[0])
        Xs, ys = X[:n].double().cpu().numpy(), y[:n].double().cpu().numpy()
        mean = X.double().mean(0).cpu().numpy()
        if kind == "logreg":
            if d != 2:
                return DataView("logreg", note=f"the data are {d}-dimensional: the panel draws d = 2")
            return DataView("logreg", x=Xs, y=ys, x_mean=mean)
        if d > 2:
            return DataView(kind, note=f"the data are {d}-dimensional: the panel draws d <= 2")
        return DataView(kind, x=Xs[:, 0], y=ys, x_mean=mean)
