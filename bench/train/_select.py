"""Model selection exactly as the official code of Battash et al.

Per run, the best epoch is the one with the highest validation accuracy, ties going to the
later epoch; per (dataset, arch, loss, seed, fold), the best learning rate is the one with the
highest validation accuracy at its best epoch, ties going to the first lr in the list.
Diverged epochs (NaN) are never selected; a run with no finite epoch is never selected.

"Validation accuracy" is the validation column the tables select by: ``val_acc``, or
``val_score`` for a dataset that declares its official metric (``bench.train._tables``). A
protocol whose validation part is its test set (``train_dev``) takes the last epoch instead
(``last_epochs``); the lr is then the best at that epoch.
"""

from __future__ import annotations

import numpy as np


def best_epochs(val_acc: np.ndarray) -> np.ndarray:
    """Best epoch per run for ``val_acc`` ``[E, ...]``: argmax, ties -> later; -1 if all NaN."""
    E = val_acc.shape[0]
    filled = np.where(np.isnan(val_acc), -np.inf, val_acc)
    later_first = filled[::-1]
    best = E - 1 - np.argmax(later_first, axis=0)
    return np.where(np.isnan(val_acc).all(axis=0), -1, best)


def best_lrs(val_at_best: np.ndarray) -> np.ndarray:
    """Best lr index along the last axis: argmax, ties -> first; -1 if all NaN."""
    filled = np.where(np.isnan(val_at_best), -np.inf, val_at_best)
    best = np.argmax(filled, axis=-1)
    return np.where(np.isnan(val_at_best).all(axis=-1), -1, best)


def last_epochs(val_acc: np.ndarray) -> np.ndarray:
    """The last epoch per run for ``val_acc`` ``[E, ...]``, -1 if it is NaN (diverged)."""
    E = val_acc.shape[0]
    return np.where(np.isnan(val_acc[E - 1]), -1, E - 1)


EPOCH_RULES = {"best": best_epochs, "last": last_epochs}
