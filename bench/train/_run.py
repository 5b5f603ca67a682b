"""Run specs: group them into grids, pick a trainer per group, return long tables.

Specs that differ only in (seed, loss, loss params, lr) form a grid. The ``stacked`` trainer
runs a grid of a stackable model as one stack when every loss's ``needs`` are ones the stack
provides and the spec asks for nothing the stack lacks (schedules, weight decay, augmentation,
a device other than the CPU); everything else goes to the per-model ``torch`` trainer. Both
fill the same ``[E, S, L, R]`` arrays (epoch, seed, method, lr), so the tables, the selection
and the files are the same whichever trainer ran, and a log line says which one did.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import LossbenchError
from bench.spec import RunSpec, varying_keys
from bench.train._tables import epochs_table, summary_table

TRAINERS = ("auto", "stacked", "torch")
STACKED_NEEDS = frozenset({"sample_weights", "lr_multiplier"})
# spec values the stacked engine implements; any other value sends the grid to torch
_STACKED_SPEC = {"nesterov": False, "weight_decay": 0.0, "schedule": "constant",
                 "augment": "none", "amp": False, "eval_every": 0, "save_predictions_at": (),
                 "noise": ()}
# columns every table has (the UCI tables' layout); other varying spec keys follow them
BASE_KEYS = ("dataset", "model", "fold", "seed", "loss", "lr")


@dataclass
class RunResult:
    """The tables of one job and what it cost."""

    epochs: pd.DataFrame
    summary: pd.DataFrame
    info: dict = field(default_factory=dict)


def grid_key(spec: RunSpec) -> RunSpec:
    """What a grid shares: the spec with its grid axes (seed, loss, params, lr) blanked."""
    return spec.replace(seed=0, loss="-", loss_params=(), lr=1.0)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when present, else mps, else cpu; an absent device is one line."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise LossbenchError("--device cuda: no CUDA device is available here (use auto or cpu)")
    return device


def stacked_refusal(spec: RunSpec, loss, input_shape: tuple[int, ...],
                    n_classes: int) -> str | None:
    """Why the stacked engine cannot train this spec (None: it can)."""
    from bench.models import stacked_form

    form = stacked_form(spec.model, input_shape=input_shape, n_classes=n_classes,
                        **dict(spec.model_params))
    if form is None or form.n_layers not in (1, 2):
        return f"model {spec.model!r} is not stackable"
    extra = set(loss.needs) - STACKED_NEEDS
    if extra:
        return f"loss {spec.method!r} needs {sorted(extra)}"
    for key, value in _STACKED_SPEC.items():
        if getattr(spec, key) != value:
            return f"{key}={getattr(spec, key)!r}"
    if resolve_device(spec.device) != "cpu":
        return f"device {resolve_device(spec.device)!r} (the stack runs on the CPU)"
    return None


def _grid_axes(specs: Sequence[RunSpec]) -> tuple[list[int], list[str], list[float]] | None:
    """(seeds, methods, lrs) if ``specs`` are exactly their product, else None."""
    seeds = list(dict.fromkeys(s.seed for s in specs))
    methods = list(dict.fromkeys(s.method for s in specs))
    lrs = list(dict.fromkeys(s.lr for s in specs))
    cells = {(s.seed, s.method, s.lr) for s in specs}
    if len(cells) != len(specs) or len(cells) != len(seeds) * len(methods) * len(lrs):
        return None
    return seeds, methods, lrs


def group_specs(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Grids of specs (full products of seed x method x lr); a spec outside any is alone."""
    by_key: dict[RunSpec, list[RunSpec]] = {}
    for spec in specs:
        by_key.setdefault(grid_key(spec), []).append(spec)
    groups = []
    for members in by_key.values():
        if _grid_axes(members) is not None:
            groups.append(members)
        else:
            groups.extend([m] for m in members)
    return groups


def _stacked_arrays(group, methods, seeds, lrs, dataset, split, on_epoch):
    from bench.train._stack import StackSpec, train_stack

    first = group[0]
    spec = StackSpec(arch=first.model, losses=[methods[m] for m in methods],
                     lrs=lrs, seeds=seeds, epochs=first.epochs, batch_size=first.batch_size,
                     optimizer=first.optimizer, momentum=first.momentum, fold=first.fold)
    return train_stack(spec, dataset.X, dataset.y, dataset.n_classes, split, on_epoch=on_epoch)


def make_augment(spec: RunSpec, dataset, split):
    """The spec's named augmentation, normalised with the training part's channel stats."""
    if spec.augment == "none":
        return None
    from bench.augment import channel_stats, get_augment

    mean, std = channel_stats(dataset.X[np.sort(split[0])])
    return get_augment(spec.augment, input_shape=dataset.input_shape, mean=mean, std=std)


def _torch_arrays(group, methods, seeds, lrs, dataset, split, on_epoch, checkpoint_dir, log):
    """Per-model runs placed in the grid's ``[E, S, L, R]`` arrays."""
    from bench.train.torch_trainer import fit_torch

    index = {(s.seed, s.method, s.lr): s for s in group}
    augment = make_augment(group[0], dataset, split)
    predictions = checkpoint_dir.parent / "predictions" if checkpoint_dir is not None else None
    out: dict[str, np.ndarray] = {}
    shape = (group[0].epochs, len(seeds), len(methods), len(lrs))
    names = list(methods)
    cells = [(si, li, ri) for si in range(shape[1]) for li in range(shape[2])
             for ri in range(shape[3])]
    for k, (si, li, ri) in enumerate(cells):
        spec = index[(seeds[si], names[li], lrs[ri])]
        last = k == len(cells) - 1
        arrays = fit_torch(spec, dataset, split, checkpoint_dir=checkpoint_dir, log=log,
                           on_epoch=on_epoch if last else None, augment=augment,
                           predictions_dir=predictions)
        for key, values in arrays.items():
            if key not in out:
                out[key] = np.full(shape, False if key == "diverged" else np.nan,
                                   dtype=values.dtype)
            out[key][:, si, li, ri] = values
    return out


def train_specs(specs: Sequence[RunSpec], dataset, *, trainer: str = "auto",
                log: Callable[[str], None] | None = None,
                on_epoch: Callable[[int], None] | None = None,
                checkpoint_dir: Path | None = None) -> RunResult:
    """Train every spec on ``dataset`` (all specs name it); tables as ``lossbench train``."""
    from bench.losses import make_loss

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if trainer not in TRAINERS:
        raise LossbenchError(f"--trainer: expected one of {', '.join(TRAINERS)}; got {trainer!r}")
    extra_keys = [k for k in varying_keys(specs) if k not in (*BASE_KEYS, "arch", "method")]
    epoch_frames, summary_frames = [], []
    started, n_steps, used = time.perf_counter(), 0, {}
    for group in group_specs(specs):
        seeds, method_names, lrs = _grid_axes(group)
        first = group[0]
        split = dataset.splits(first.protocol)[first.fold]
        methods = {}
        for spec in group:
            methods.setdefault(spec.method, make_loss(spec.loss, **dict(spec.loss_params)))
        by_path: dict[str, list[str]] = {"stacked": [], "torch": []}
        for spec in group:
            if spec.method in by_path["stacked"] + by_path["torch"]:
                continue
            why = stacked_refusal(spec, methods[spec.method], dataset.input_shape,
                                  dataset.n_classes)
            if trainer == "stacked" and why:
                raise LossbenchError(f"--trainer stacked cannot train {spec.method!r}: {why}")
            path = "torch" if trainer == "torch" or why else "stacked"
            by_path[path].append(spec.method)
            if path == "torch" and trainer == "auto":
                log(f"{spec.method}: torch trainer (stacked engine cannot: {why})")
        for path, names in by_path.items():
            if not names:
                continue
            sub = [s for s in group if s.method in names]
            sub_methods = {m: methods[m] for m in names}
            if path == "stacked":
                arrays = _stacked_arrays(sub, sub_methods, seeds, lrs, dataset, split, on_epoch)
            else:
                arrays = _torch_arrays(sub, sub_methods, seeds, lrs, dataset, split, on_epoch,
                                       checkpoint_dir, log)
            for name in names:
                used[name] = path
            args = (dataset.name, first.model, first.fold, seeds, names, lrs)
            epoch_frames.append(_with_keys(epochs_table(arrays, *args), sub, extra_keys))
            summary_frames.append(_with_keys(summary_table(arrays, *args), sub, extra_keys))
            n_batches = -(-len(split[0]) // first.batch_size)
            n_steps += len(sub) * first.epochs * n_batches
    order = {"loss": _first_seen(s.method for s in specs),
             "arch": _first_seen(s.model for s in specs)}
    keys = ["arch", *extra_keys, "fold", "seed", "loss"]
    summary = _ordered(pd.concat(summary_frames, ignore_index=True), keys, order)
    epochs = _ordered(pd.concat(epoch_frames, ignore_index=True), [*keys, "lr", "epoch"], order)
    info = {"n_models": len(specs), "model_steps": n_steps,
            "train_seconds": time.perf_counter() - started, "trainers": used,
            "per_model_losses": [m for m, p in used.items() if p == "torch"]}
    return RunResult(epochs, summary, info)


def _with_keys(table: pd.DataFrame, specs: Sequence[RunSpec], keys: list[str]) -> pd.DataFrame:
    """Add the varying spec keys beyond the base ones, per method (after the ``lr`` column)."""
    if not keys:
        return table
    flat = {s.method: s.flat() for s in specs}
    at = list(table.columns).index("lr") + 1
    for offset, key in enumerate(keys):
        table.insert(at + offset, key, table["loss"].map(lambda m, k=key: flat[m].get(k)))
    return table


def _first_seen(values) -> dict:
    return {v: i for i, v in enumerate(dict.fromkeys(values))}


def _ordered(frame: pd.DataFrame, keys: list[str], orders: dict[str, dict]) -> pd.DataFrame:
    """Sort by ``keys``; columns in ``orders`` sort in the order the specs gave them."""
    def key(column: pd.Series) -> pd.Series:
        return column.map(orders[column.name]) if column.name in orders else column

    keys = [k for k in keys if k in frame.columns]
    return frame.sort_values(keys, kind="stable", key=key).reset_index(drop=True)
