"""Train every (loss, lr, seed[, fold]) of one dataset and architecture; return long tables.

Losses whose extra needs the stack provides (``STACKED_NEEDS``) train together in one stack
per fold. A loss with other needs (two-scale scales, COT's second pass, an estimated
transition matrix) trains on the per-model path (``bench.train._naive``), announced by a log
line, with the same seeds, data order and selection, so its rows mean the same thing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.errors import LossbenchError
from bench.train._naive import train_naive
from bench.train._stack import StackSpec, train_stack
from bench.train._tables import epochs_table, summary_table

STACKED_NEEDS = frozenset({"sample_weights", "lr_multiplier"})


@dataclass
class RunResult:
    """The tables of one dataset x arch job and what it cost."""

    epochs: pd.DataFrame
    summary: pd.DataFrame
    info: dict = field(default_factory=dict)


def split_by_path(losses: Sequence) -> tuple[list[int], list[int]]:
    """Indexes of the losses the stack trains, and of those that need the per-model path."""
    stacked, single = [], []
    for i, loss in enumerate(losses):
        (stacked if set(getattr(loss, "needs", ())) <= STACKED_NEEDS else single).append(i)
    return stacked, single


def train_dataset(dataset, arch: str, loss_ids: Sequence[str], lrs: Sequence[float],
                  seeds: Sequence[int], protocol: str = "klambauer", epochs: int = 50,
                  batch_size: int = 8, optimizer: str = "sgd", momentum: float = 0.9,
                  log: Callable[[str], None] | None = None,
                  on_epoch: Callable[[int], None] | None = None) -> RunResult:
    """Run the whole grid of one dataset (a ``bench.data.Dataset``) and architecture."""
    from bench.losses import make_loss

    log = log or (lambda msg: print(msg, file=sys.stderr))
    losses = [make_loss(i) for i in loss_ids]
    stacked, single = split_by_path(losses)
    for i in single:
        log(f"loss '{loss_ids[i]}' needs {sorted(losses[i].needs)}: trained on the per-model "
            "path (one model at a time), not in the stack")
    splits = dataset.splits(protocol)
    epoch_frames, summary_frames = [], []
    started = time.perf_counter()
    n_steps = 0
    for fold, split in enumerate(splits):
        for index, runner in ((stacked, train_stack), (single, train_naive)):
            if not index:
                continue
            spec = StackSpec(arch=arch, losses=[losses[i] for i in index], lrs=list(lrs),
                             seeds=list(seeds), epochs=epochs, batch_size=batch_size,
                             optimizer=optimizer, momentum=momentum, fold=fold)
            arrays = runner(spec, dataset.X, dataset.y, dataset.n_classes, split,
                            on_epoch=on_epoch)
            ids = [loss_ids[i] for i in index]
            args = (dataset.name, arch, fold, seeds, ids, lrs)
            epoch_frames.append(epochs_table(arrays, *args))
            summary_frames.append(summary_table(arrays, *args))
            n_batches = -(-len(split[0]) // batch_size)
            n_steps += len(index) * len(lrs) * len(seeds) * epochs * n_batches
    order = {loss: i for i, loss in enumerate(loss_ids)}
    keys = ["fold", "seed", "loss"]
    summary = _ordered(pd.concat(summary_frames, ignore_index=True), keys, order)
    epochs_df = _ordered(pd.concat(epoch_frames, ignore_index=True),
                         [*keys, "lr", "epoch"], order)
    seconds = time.perf_counter() - started
    info = {"n_models": len(losses) * len(lrs) * len(seeds) * len(splits),
            "n_folds": len(splits), "model_steps": n_steps, "train_seconds": seconds,
            "per_model_losses": [loss_ids[i] for i in single]}
    return RunResult(epochs_df, summary, info)


def _ordered(frame: pd.DataFrame, keys: list[str], loss_order: dict[str, int]) -> pd.DataFrame:
    def key(column: pd.Series) -> pd.Series:
        return column.map(loss_order) if column.name == "loss" else column

    return frame.sort_values(keys, kind="stable", key=key).reset_index(drop=True)


def check_grid(loss_ids: Sequence[str], lrs: Sequence[float], seeds: Sequence[int],
               epochs: int, batch_size: int) -> None:
    """One-line errors for a bad grid before any work starts."""
    from bench.losses import make_loss

    if not loss_ids:
        raise LossbenchError("--losses: expected at least one loss id")
    if len(set(loss_ids)) != len(loss_ids):
        raise LossbenchError(f"--losses: duplicate ids in {list(loss_ids)}")
    for loss_id in loss_ids:
        make_loss(loss_id)
    bad = [x for x in lrs if not (np.isfinite(x) and x > 0)]
    if not lrs or bad:
        raise LossbenchError(f"--lrs: expected positive learning rates; got {list(lrs)}")
    if len(set(lrs)) != len(lrs):
        raise LossbenchError(f"--lrs: duplicate values in {list(lrs)}")
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise LossbenchError(f"--seeds: expected distinct integers >= 0; got {list(seeds)}")
    if epochs < 1:
        raise LossbenchError(f"--epochs: expected an integer >= 1; got {epochs}")
    if batch_size < 1:
        raise LossbenchError(f"--batch-size: expected an integer >= 1; got {batch_size}")
