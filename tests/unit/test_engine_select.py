"""Selection rules of the official code on hand-made metric tables (ties both ways, NaN)."""

import numpy as np

from bench.train import best_epochs, best_lrs
from bench.train._tables import summary_table


def test_best_epoch_ties_go_to_the_later_epoch():
    val = np.array([[0.5, 0.9], [0.7, 0.9], [0.7, 0.1], [0.6, 0.9]])  # [E=4, 2 runs]
    assert best_epochs(val).tolist() == [2, 3]


def test_best_epoch_skips_nan_and_flags_all_nan():
    val = np.array([[0.4, np.nan], [0.6, np.nan], [np.nan, np.nan]])
    assert best_epochs(val).tolist() == [1, -1]


def test_best_lr_ties_go_to_the_first_lr():
    assert best_lrs(np.array([[0.7, 0.8, 0.8], [0.9, 0.9, 0.9]])).tolist() == [1, 0]
    assert best_lrs(np.array([[np.nan, 0.1, 0.1], [np.nan] * 3])).tolist() == [1, -1]


def _arrays(val, test):
    val, test = np.asarray(val, float), np.asarray(test, float)
    return {"train_loss": np.zeros_like(val), "diverged": np.isnan(val),
            "val_acc": val, "test_acc": test}


def test_summary_selects_epoch_then_lr():
    # [E=3, S=1, L=1, R=3]; lr0 best 0.8 at epoch 2 (tie with epoch 0 -> later),
    # lr1 best 0.8 at epoch 1, lr2 0.7: lr0 and lr1 tie at 0.8 -> the first, lr0, epoch 2.
    val = np.array([[0.8, 0.5, 0.7], [0.6, 0.8, 0.7], [0.8, 0.2, 0.7]])[:, None, None, :]
    test = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])[:, None, None, :]
    table = summary_table(_arrays(val, test), "toy", "linear", 0, [0], ["ce"],
                          [0.01, 0.005, 0.001])
    row = table.iloc[0]
    assert (row["lr"], row["best_epoch"], row["val_acc"], row["test_acc"]) == (0.01, 2, 0.8, 0.7)
    assert not row["diverged"]


def test_summary_with_every_lr_diverged_keeps_a_nan_row():
    val = np.full((2, 1, 1, 2), np.nan)
    table = summary_table(_arrays(val, val), "toy", "mlp", 0, [3], ["el"], [0.1, 0.2])
    row = table.iloc[0]
    assert row["diverged"] and row["best_epoch"] == -1 and np.isnan(row["test_acc"])
    assert row["n_lrs_diverged"] == 2
