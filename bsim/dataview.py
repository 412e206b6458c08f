"""What the data panel shows, computed by the runner (the views never touch the model).

``data_view(problem, theta, points)`` returns a ``DataView`` of plain numpy arrays:
- linreg: up to ``points`` training points as (x_1, y) and the fits at theta and theta*
  along x_1 with the other features at their mean (d = 1: the fits themselves);
- logreg: up to ``points`` points (x_1, x_2) by class and the decision boundary
  theta . x = 0 at theta and theta* (d = 2);
- lstm: a few test sequences, the next value's truth against the prediction at theta;
  the character LSTM (kind "text"): the text generated at theta from the test text's first T
  characters, greedy (temperature 0) and drawn at ``TEMPERATURE`` with a fixed seed, beside the text's
  own continuation, and the next-character accuracy;
- softmax: the accuracy per class (test split, else training) at theta and, when the file's
  features are a k x k image (k >= 4: the digits), the first test images with the class and the guess.
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


def softmax_view(problem, theta: torch.Tensor, images: int) -> DataView:
    """Per-class accuracy at theta (``extra['class_acc']``, on ``extra['split']``) and, for image data,
    the first ``images`` test images (``extra['images']``, k x s x s, as in the file), their classes
    (``truth``) and the guesses at theta (``predicted``)."""
    test = problem.X_test is not None
    X, y = (problem.X_test, problem.y_test) if test else (problem.X, problem.y)
    extra = {"split": "test" if test else "training", "class_acc": problem.class_accuracy(theta, X, y),
             "accuracy": float(problem.accuracy(theta, X, y))}
    raw = problem.X_test_raw
    side = int(round(raw.shape[1] ** 0.5)) if raw is not None else 0
    if not test or raw is None or side < 4 or side * side != raw.shape[1]:
        return DataView("softmax", extra=extra)
    k = min(images, X.shape[0])
    extra["images"] = raw[:k].reshape(k, side, side)
    return DataView("softmax", truth=y[:k].double().cpu().numpy(),
                    predicted=problem.predict(theta, X[:k]).double().cpu().numpy(), extra=extra)


#: the generated line's length, and the temperature and seed of the drawn one (the greedy line: temperature 0)
GENERATED_CHARS, TEMPERATURE, GENERATION_SEED = 160, 0.8, 0


def text_view(problem, theta: torch.Tensor) -> DataView:
    """The character LSTM's lines (``extra``): prompt, greedy, drawn (at TEMPERATURE, GENERATION_SEED),
    the text's own continuation, and the next-character accuracy on the split they come from."""
    test = problem.test_ids is not None
    ids = problem.test_ids if test else problem.text_ids
    T, n = problem.seq_len, GENERATED_CHARS
    prompt = ids[:T]
    decode = "".join
    extra = {"split": "test" if test else "training",
             "prompt": decode(problem.vocab[i] for i in prompt.tolist()),
             "greedy": problem.generate(theta, prompt, n),
             "drawn": problem.generate(theta, prompt, n, temperature=TEMPERATURE, seed=GENERATION_SEED),
             "temperature": TEMPERATURE, "seed": GENERATION_SEED,
             "truth": decode(problem.vocab[i] for i in ids[T:T + n].tolist()),
             "accuracy": float(problem.test_accuracy(theta) if test else problem.train_accuracy(theta)),
             "entropy": problem.entropy, "vocab": len(problem.vocab)}
    return DataView("text", extra=extra)


def data_view(problem, theta: torch.Tensor, points: int = 200, sequences: int = 3, images: int = 8) -> DataView:
    """The data and the model's answer at theta (see the module docstring)."""
    kind = getattr(problem, "kind", type(problem).__name__.lower())
    with torch.no_grad():
        if hasattr(problem, "vocab"):      # the character LSTM
            return text_view(problem, theta)
        if hasattr(problem, "hidden"):     # the LSTM
            X = problem.X_test if problem.X_test is not None else problem.X
            y = problem.y_test if problem.y_test is not None else problem.y
            k = min(sequences, X.shape[0])
            pred = problem.predict(theta, X[:k])
            return DataView("lstm", sequences=X[:k].double().cpu().numpy(), truth=y[:k].double().cpu().numpy(),
                            predicted=pred.double().cpu().numpy())
        if kind == "softmax":
            return softmax_view(problem, theta, images)
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
