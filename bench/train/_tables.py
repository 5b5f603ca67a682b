"""Long tables of a stacked run: one row per model per epoch, and the selected model per cell.

Arrays come from ``train_stack`` shaped ``[E, S, L, R]`` (epoch, seed, loss, lr); tables are
long (STYLE.md) so analysis can pivot them any way it likes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.train._select import EPOCH_RULES, best_lrs

FLOAT_FORMAT = "%.6g"  # fixed text form: identical runs give byte-identical CSVs


def _long(arrays: dict[str, np.ndarray], record: str, dataset: str, arch: str, fold: int,
          seeds: Sequence[int], losses: Sequence[str], lrs: Sequence[float]) -> pd.DataFrame:
    """Arrays ``[N, S, L, R]`` (record, seed, loss, lr) as one row per model and record, the
    keys first, sorted by seed, loss (in run order), lr and ``record``."""
    N, S, L, R = next(iter(arrays.values())).shape
    n, s, li, r = (a.ravel() for a in np.meshgrid(np.arange(N), np.arange(S), np.arange(L),
                                                  np.arange(R), indexing="ij"))
    table = pd.DataFrame({
        "dataset": dataset, "arch": arch, "fold": fold,
        "seed": np.asarray(seeds)[s], "loss": np.asarray(losses, dtype=object)[li],
        "lr": np.asarray(lrs, dtype=float)[r],
    })
    if record not in arrays:
        table[record] = n
    for key, values in arrays.items():
        table[key] = values.ravel()
    table[record] = table[record].astype(np.int64)
    return table.sort_values(["seed", "loss", "lr", record], kind="stable",
                             key=_loss_order(losses)).reset_index(drop=True)


def epochs_table(arrays: dict[str, np.ndarray], dataset: str, arch: str, fold: int,
                 seeds: Sequence[int], losses: Sequence[str], lrs: Sequence[float]) -> pd.DataFrame:
    """Every model, every epoch: keys, ``diverged``, ``train_loss`` and all split metrics."""
    return _long(arrays, "epoch", dataset, arch, fold, seeds, losses, lrs)


def _loss_order(losses: Sequence[str]):
    rank = {loss: i for i, loss in enumerate(losses)}

    def key(column: pd.Series) -> pd.Series:
        return column.map(rank) if column.name == "loss" else column

    return key


def selection_column(arrays: dict[str, np.ndarray]) -> str:
    """What selects epoch and lr: the dataset's official score on validation when the trainer
    recorded one (``val_score``: GLUE's MCC / F1, the number the study ranks), else
    ``val_acc``."""
    return "val_score" if "val_score" in arrays else "val_acc"


def summary_table(arrays: dict[str, np.ndarray], dataset: str, arch: str, fold: int,
                  seeds: Sequence[int], losses: Sequence[str],
                  lrs: Sequence[float], epoch_rule: str = "best") -> pd.DataFrame:
    """One row per (seed, loss): the selected lr and epoch and every metric there.

    ``epoch_rule``: ``best`` (by ``selection_column``, ties to the later epoch) or ``last``
    (the protocol's validation part is its test set, ``bench.data.protocol_epoch``)."""
    val = arrays[selection_column(arrays)]  # [E, S, L, R]
    epoch = EPOCH_RULES[epoch_rule](val)  # [S, L, R]
    val_at_best = np.take_along_axis(val, np.maximum(epoch, 0)[None], 0)[0]
    val_at_best = np.where(epoch < 0, np.nan, val_at_best)
    lr_idx = best_lrs(val_at_best)  # [S, L]
    ever = arrays["diverged"].any(axis=0)  # [S, L, R]
    metrics = [k for k in arrays if k not in ("diverged",)]
    rows = []
    for si, seed in enumerate(seeds):
        for li, loss in enumerate(losses):
            r = int(lr_idx[si, li])
            row = {"dataset": dataset, "arch": arch, "loss": loss, "seed": int(seed),
                   "fold": int(fold), "lr": float(lrs[r]) if r >= 0 else np.nan,
                   "best_epoch": int(epoch[si, li, r]) if r >= 0 else -1,
                   "n_lrs_diverged": int(ever[si, li].sum()),
                   "diverged": bool(ever[si, li, r]) if r >= 0 else True}
            for key in metrics:
                row[key] = float(arrays[key][epoch[si, li, r], si, li, r]) if r >= 0 else np.nan
            rows.append(row)
    table = pd.DataFrame(rows)
    first = ["dataset", "arch", "loss", "seed", "fold", "lr", "best_epoch", "val_acc",
             "test_acc", "diverged", "n_lrs_diverged"]
    return table[first + [c for c in table.columns if c not in first]]


def iterations_table(arrays: dict[str, np.ndarray], dataset: str, arch: str, fold: int,
                     seeds: Sequence[int], losses: Sequence[str],
                     lrs: Sequence[float]) -> pd.DataFrame:
    """Every model, every ``eval_every`` record: the ``iter_`` arrays of the torch trainer
    (``IterationLog``), laid out ``[N, S, L, R]`` (record, seed, loss, lr), without the
    prefix: ``iteration``, ``epoch``, ``train_loss``, ``batch_*``, ``val_*``, ``test_*``."""
    parts = {k[len("iter_"):]: v for k, v in arrays.items() if k.startswith("iter_")}
    return _long(parts, "iteration", dataset, arch, fold, seeds, losses, lrs)
