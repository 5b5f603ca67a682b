"""The official GLUE scores (accuracy, F1, Matthews correlation) from labels and predictions,
by scikit-learn: the reference for what the trainers record.

The trainers record a dataset's declared metric per epoch themselves (``<split>_score``,
``bench.train._metrics``: from per-class counts summed over batches). This module scores a
predictions file of the torch trainer (``spec.save_predictions_at`` and ``predictions_dir``:
``<run_id>-epoch<k>.csv.gz`` holds the test, here dev, rows' ``y`` and ``argmax``) with
``score_predictions(path, dataset.meta["metric"])``, or two arrays with ``score``; the tests
check that both ways give the same number.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from bench.errors import LossbenchError


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Binary F1 of class 1 (MRPC "equivalent", QQP "duplicate"), as GLUE scores them."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0.0))


def mcc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews correlation (CoLA); 0 when a column of the confusion matrix is empty."""
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(y_true, y_pred))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy, "f1": f1, "mcc": mcc}


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``metric`` ("accuracy", "f1", "mcc") of predictions ``y_pred`` against ``y_true``."""
    if metric not in METRICS:
        raise LossbenchError(f"Unknown metric {metric!r}. Known metrics: {', '.join(METRICS)}")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or not y_true.size:
        raise LossbenchError(f"score: y_true and y_pred must be equal-length 1-d arrays; got "
                             f"shapes {y_true.shape} and {y_pred.shape}")
    return METRICS[metric](y_true, y_pred)


def score_predictions(path: str | os.PathLike, metric: str) -> float:
    """``metric`` of a predictions file of ``fit_torch`` (columns ``y`` and ``argmax``)."""
    import pandas as pd

    frame = pd.read_csv(path)
    missing = [c for c in ("y", "argmax") if c not in frame.columns]
    if missing:
        raise LossbenchError(f"{path}: no column {missing[0]!r}; expected a predictions file "
                             "of the torch trainer (index, y, p_y, argmax, correct)")
    return score(metric, frame["y"].to_numpy(), frame["argmax"].to_numpy())
