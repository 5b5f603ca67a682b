"""Run specs: group them into grids, pick a trainer per group, return long tables.

Specs that differ only in (seed, loss, loss params, noise, lr) form a grid; its "slots" are
the (method, noise) pairs, so every noise level of a dataset trains in one stack, each slot on
its own noisy labels per seed (``bench.train._labels``). The ``stacked`` trainer
runs a grid of a stackable model as one stack when every loss's ``needs`` are ones the stack
provides and the spec asks for nothing the stack lacks (schedules, weight decay, augmentation,
a device other than the CPU); everything else goes to the per-model ``torch`` trainer. Both
fill the same ``[E, S, L, R]`` arrays (epoch, seed, slot, lr), so the tables, the selection
and the files are the same whichever trainer ran, and a log line says which one did. When any
spec has noise, every row gets ``noise_kind``, ``noise_rate`` and ``noise_realised_train``
(clean rows: ``none``, 0, 0); a job without noise gets no noise columns.

Forward correction with an estimated T (``forward`` without ``T``; Patrini et al. 2017, the
GCE paper's "Forward T-hat") is two runs: when the grid holds CE at the same noise level, the
stack trains CE first, T-hat of each (noise, seed) is estimated from the training-set softmax
of the CE model the protocol selects (best lr, best validation epoch, on the noisy validation
labels), and a second stack trains forward with it; the estimates are returned as the
``transitions`` table (one row per matrix entry, beside the true T). Without CE in the grid
the per-model trainer trains its own reference (``TrainContext.reference_probs``).
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
from bench.spec import REFERENCE_LOSS, STACKED_SPEC, RunSpec, varying_keys
from bench.train._tables import epochs_table, iterations_table, summary_table

TRAINERS = ("auto", "stacked", "torch")
# scale_params / weight_norm: the two-scale losses' own scales and R (bench.train._scales)
STACKED_NEEDS = frozenset({"sample_weights", "lr_multiplier", "best_model", "scale_params",
                           "weight_norm"})
# columns every table has (the UCI tables' layout); other varying spec keys follow them
BASE_KEYS = ("dataset", "model", "fold", "seed", "loss", "lr")
# columns of a job with label noise (after ``lr``); noise_mapping only when a spec sets one
NOISE_COLUMNS = ("noise_kind", "noise_rate", "noise_mapping", "noise_realised_train")


@dataclass
class RunResult:
    """The tables of one job and what it cost."""

    epochs: pd.DataFrame
    summary: pd.DataFrame
    info: dict = field(default_factory=dict)
    iterations: pd.DataFrame | None = None  # eval_every records (torch trainer), else None
    transitions: pd.DataFrame | None = None  # forward's T-hat estimates (stacked), else None


def grid_key(spec: RunSpec) -> RunSpec:
    """What a grid shares: the spec with its grid axes (seed, loss, params, noise, lr)
    blanked."""
    return spec.replace(seed=0, loss="-", loss_params=(), noise=(), lr=1.0)


def slot_of(spec: RunSpec) -> tuple:
    """A spec's slot in the stack's L axis: its (method, noise)."""
    return spec.method, spec.noise


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when present, else mps, else cpu; an absent device is one line."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return _freest_cuda()
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise LossbenchError("--device cuda: no CUDA device is available here (use auto or cpu)")
    return _freest_cuda() if device == "cuda" else device


def _freest_cuda() -> str:
    """The visible GPU with the most free memory: jobs sharing a workstation's N GPUs
    (`--resources gpu=N`) spread over them without being told a device index."""
    import torch

    count = torch.cuda.device_count()
    if count <= 1:
        return "cuda"
    free = [torch.cuda.mem_get_info(i)[0] for i in range(count)]
    return f"cuda:{free.index(max(free))}"


def stacked_refusal(spec: RunSpec, loss, input_shape: tuple[int, ...],
                    n_classes: int, provided: frozenset[str] = STACKED_NEEDS) -> str | None:
    """Why the stacked engine cannot train this spec (None: it can), given the loss needs
    it ``provided``."""
    from bench.models import stacked_form

    form = stacked_form(spec.model, input_shape=input_shape, n_classes=n_classes,
                        **dict(spec.model_params))
    if form is None or form.n_layers not in (1, 2):
        return f"model {spec.model!r} is not stackable"
    extra = set(loss.needs) - provided
    if extra:
        return f"loss {spec.method!r} needs {sorted(extra)}"
    for key, value in STACKED_SPEC.items():
        if getattr(spec, key) != value:
            return f"{key}={getattr(spec, key)!r}"
    if resolve_device(spec.device) != "cpu":
        return f"device {resolve_device(spec.device)!r} (the stack runs on the CPU)"
    return None


def _grid_axes(specs: Sequence[RunSpec]) -> tuple[list[int], list[tuple], list[float]] | None:
    """(seeds, slots, lrs) if ``specs`` are exactly their product, else None."""
    seeds = list(dict.fromkeys(s.seed for s in specs))
    slots = list(dict.fromkeys(slot_of(s) for s in specs))
    lrs = list(dict.fromkeys(s.lr for s in specs))
    cells = {(s.seed, slot_of(s), s.lr) for s in specs}
    if len(cells) != len(specs) or len(cells) != len(seeds) * len(slots) * len(lrs):
        return None
    return seeds, slots, lrs


def group_specs(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Grids of specs (full products of seed x slot x lr); a spec outside any is alone."""
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


class _Grid:
    """One grid: its axes, the labels of each (noise, seed), the loss of each slot."""

    def __init__(self, group: Sequence[RunSpec], dataset) -> None:
        from bench.train._labels import build_loss, run_labels

        self.specs = list(group)
        self.seeds, self.slots, self.lrs = _grid_axes(group)
        first = group[0]
        self.split = dataset.splits(first.protocol)[first.fold]
        self.labels = {}  # (noise, seed) -> RunLabels
        for spec in group:
            key = (spec.noise, spec.seed)
            if key not in self.labels:
                self.labels[key] = run_labels(dataset, spec, self.split)
        self.spec_of = {slot_of(s): s for s in group}  # a representative spec per slot
        # T of a slot's noise (the same for every seed): forward with T: true trains with it
        self.losses = {slot: build_loss(spec, self.labels[(spec.noise, self.seeds[0])].T)
                       for slot, spec in self.spec_of.items()}
        # table names: the method, or method + slot index when noise repeats a method
        methods = [m for m, _ in self.slots]
        unique = len(set(methods)) == len(methods)
        self.names = {slot: slot[0] if unique else f"{slot[0]}\x00{k}"
                      for k, slot in enumerate(self.slots)}

    def stacked_labels(self, slots: Sequence[tuple], dataset) -> np.ndarray:
        """``[N]`` when every slot trains on the clean labels, else ``[S, L, N]``."""
        if not any(noise for _, noise in slots):
            return np.asarray(dataset.y)
        return np.stack([np.stack([self.labels[(noise, seed)].y for _, noise in slots])
                         for seed in self.seeds])


def _stacked_arrays(grid: _Grid, slots, dataset, on_epoch, reference=(), losses=None):
    from bench.train._metrics import dataset_score
    from bench.train._stack import StackSpec, train_stack

    first = grid.spec_of[slots[0]]
    losses = losses or [grid.losses[slot] for slot in slots]
    methods = list(dict.fromkeys(method for method, _ in slots))
    spec = StackSpec(arch=first.model, losses=losses,
                     lrs=grid.lrs, seeds=grid.seeds, epochs=first.epochs,
                     batch_size=first.batch_size, optimizer=first.optimizer,
                     momentum=first.momentum, fold=first.fold, score=dataset_score(dataset),
                     slot_groups=[methods.index(method) for method, _ in slots])
    return train_stack(spec, dataset.X, grid.stacked_labels(slots, dataset), dataset.n_classes,
                       grid.split, on_epoch=on_epoch,
                       reference=[slots.index(r) for r in reference])


def _reference_slot(grid: _Grid, slot: tuple) -> tuple:
    """The CE slot at ``slot``'s noise level (forward's first stage)."""
    return REFERENCE_LOSS, slot[1]


def _estimated_transitions(grid: _Grid, slots, arrays, refs, dataset, log) -> dict:
    """T-hat per (noise, seed) from the reference (CE) models the protocol selects: the best
    lr at each one's best validation epoch (``bench.train._select``), whose best-validation
    weights gave ``arrays["reference_probs"]``; returns {(noise, seed): (T-hat, lr, epoch)}."""
    from bench.losses._noisy import estimate_transition_matrix
    from bench.train._select import best_epochs, best_lrs

    probs = arrays.pop("reference_probs")  # [S, J, R, n_train, C]
    out = {}
    for j, ref in enumerate(refs):
        li = slots.index(ref)
        for si, seed in enumerate(grid.seeds):
            val = arrays["val_acc"][:, si, li, :]  # [E, R]
            epochs = best_epochs(val)
            at_best = np.array([val[e, r] if e >= 0 else np.nan for r, e in enumerate(epochs)])
            r = int(best_lrs(at_best))
            if r < 0:
                log(f"forward: every CE reference run diverged ({ref[1] or 'clean'}, seed "
                    f"{seed}); T-hat = identity (plain CE)")
                out[(ref[1], seed)] = (np.eye(dataset.n_classes), np.nan, -1)
                continue
            T_hat = estimate_transition_matrix(probs[si, j, r]).numpy()
            out[(ref[1], seed)] = (T_hat, grid.lrs[r], int(epochs[r]))
    return out


def _forward_hat_losses(grid: _Grid, slots, estimates) -> list:
    """forward losses holding one T-hat per seed (``[S, 1, C, C]``: the stack's seed axis)."""
    from bench.train._labels import build_loss

    out = []
    for slot in slots:
        spec = grid.spec_of[slot]
        stack = np.stack([estimates[(slot[1], seed)][0] for seed in grid.seeds])[:, None]
        out.append(build_loss(spec.replace(loss_params={**dict(spec.loss_params),
                                                        "T": stack})))
    return out


def _transitions_table(grid: _Grid, dataset, first: RunSpec, estimates) -> pd.DataFrame:
    """One row per entry of each T-hat, beside the true T it estimates."""
    from bench.train._labels import noise_of

    rows = []
    for (noise, seed), (T_hat, lr, epoch) in estimates.items():
        kind, rate, _ = noise_of(grid.spec_of[(REFERENCE_LOSS, noise)])
        T = grid.labels[(noise, seed)].T
        for i in range(T.shape[0]):
            for j in range(T.shape[1]):
                rows.append({"dataset": dataset.name, "arch": first.model, "fold": first.fold,
                             "seed": seed, "noise_kind": kind, "noise_rate": rate,
                             "reference": REFERENCE_LOSS, "reference_lr": lr,
                             "reference_epoch": epoch + 1, "i": i, "j": j,
                             "T_true": float(T[i, j]), "T_hat": float(T_hat[i, j])})
    return pd.DataFrame(rows)


def make_augment(spec: RunSpec, dataset, split):
    """The spec's named augmentation, normalised with the training part's channel stats."""
    if spec.augment == "none":
        return None
    from bench.augment import augment_stats, get_augment

    mean, std = augment_stats(spec.augment, dataset.X[np.sort(split[0])])
    return get_augment(spec.augment, input_shape=dataset.input_shape, mean=mean, std=std)


def _torch_arrays(grid: _Grid, slots, dataset, on_epoch, checkpoint_dir, log):
    """Per-model runs placed in the grid's ``[E, S, L, R]`` arrays; a noisy spec trains on a
    view of the dataset holding its noisy labels."""
    from bench.train._labels import LabelView, resolved_spec
    from bench.train.torch_trainer import fit_torch

    index = {(s.seed, slot_of(s), s.lr): s for s in grid.specs}
    augment = make_augment(grid.specs[0], dataset, grid.split)
    predictions = checkpoint_dir.parent / "predictions" if checkpoint_dir is not None else None
    out: dict[str, np.ndarray] = {}
    seeds, lrs = grid.seeds, grid.lrs
    shape = (grid.specs[0].epochs, len(seeds), len(slots), len(lrs))
    cells = [(si, li, ri) for si in range(shape[1]) for li in range(shape[2])
             for ri in range(shape[3])]
    for k, (si, li, ri) in enumerate(cells):
        spec = index[(seeds[si], slots[li], lrs[ri])]
        labels = grid.labels[(spec.noise, spec.seed)]
        data = LabelView(dataset, labels.y) if spec.noise else dataset
        last = k == len(cells) - 1
        arrays = fit_torch(resolved_spec(spec, labels.T), data, grid.split,
                           checkpoint_dir=checkpoint_dir, log=log,
                           on_epoch=on_epoch if last else None, augment=augment,
                           predictions_dir=predictions)
        for key, values in arrays.items():  # iter_*: one entry per eval_every record
            if key not in out:  # NaN until filled; flags and counts (iter_iteration): 0
                fill = np.nan if values.dtype.kind == "f" else 0
                out[key] = np.full((len(values), *shape[1:]), fill, dtype=values.dtype)
            out[key][:, si, li, ri] = values
    return out


def train_specs(specs: Sequence[RunSpec], dataset, *, trainer: str = "auto",
                log: Callable[[str], None] | None = None,
                on_epoch: Callable[[int], None] | None = None,
                checkpoint_dir: Path | None = None) -> RunResult:
    """Train every spec on ``dataset`` (all specs name it); tables as ``lossbench train``."""
    from bench.data import protocol_epoch

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if trainer not in TRAINERS:
        raise LossbenchError(f"--trainer: expected one of {', '.join(TRAINERS)}; got {trainer!r}")
    noisy = any(s.noise for s in specs)
    extra_keys = [k for k in varying_keys(specs) if k not in (*BASE_KEYS, "arch", "method")
                  and not (noisy and k.startswith("noise_"))]
    noise_keys = _noise_columns(specs) if noisy else []
    epoch_frames, summary_frames, iteration_frames, transition_frames = [], [], [], []
    started, n_steps, used = time.perf_counter(), 0, {}
    for group in group_specs(specs):
        grid = _Grid(group, dataset)
        first = group[0]
        by_path: dict[str, list[tuple]] = {"stacked": [], "stacked_hat": [], "torch": []}
        for slot in grid.slots:
            spec = grid.spec_of[slot]
            why = stacked_refusal(spec, grid.losses[slot], dataset.input_shape,
                                  dataset.n_classes)
            if why and trainer != "torch" and _two_stage(grid, slot, dataset):
                by_path["stacked_hat"].append(slot)
                used[spec.method] = "stacked"
                continue
            if trainer == "stacked" and why:
                raise LossbenchError(f"--trainer stacked cannot train {spec.method!r}: {why}")
            path = "torch" if trainer == "torch" or why else "stacked"
            by_path[path].append(slot)
            if path == "torch" and trainer == "auto" and spec.method not in used:
                log(f"{spec.method}: torch trainer (stacked engine cannot: {why})")
            used[spec.method] = path
        for path in ("stacked", "stacked_hat"):  # a method's slots side by side: one group
            by_path[path] = _by_method(by_path[path])
        refs = list(dict.fromkeys(_reference_slot(grid, s) for s in by_path["stacked_hat"]))
        estimates = {}
        for path, slots in by_path.items():
            if not slots:
                continue
            if path == "stacked":
                arrays = _stacked_arrays(grid, slots, dataset, on_epoch, reference=refs)
                if refs:
                    estimates = _estimated_transitions(grid, slots, arrays, refs, dataset, log)
                    transition_frames.append(_transitions_table(grid, dataset, first,
                                                                estimates))
            elif path == "stacked_hat":
                arrays = _stacked_arrays(grid, slots, dataset, on_epoch,
                                         losses=_forward_hat_losses(grid, slots, estimates))
            else:
                arrays = _torch_arrays(grid, slots, dataset, on_epoch, checkpoint_dir, log)
            names = [grid.names[slot] for slot in slots]
            args = (dataset.name, first.model, first.fold, grid.seeds, names, grid.lrs)
            records = {k: arrays.pop(k) for k in list(arrays) if k.startswith("iter_")}
            if records:  # eval_every: the torch trainer's per-record metrics
                table = iterations_table(records, *args)
                if noisy:
                    table = _with_noise(table, grid, slots, noise_keys)
                iteration_frames.append(_with_keys(table, grid, extra_keys))
            summary = summary_table(arrays, *args, epoch_rule=protocol_epoch(first.protocol))
            for frames, table in ((epoch_frames, epochs_table(arrays, *args)),
                                  (summary_frames, summary)):
                if noisy:
                    table = _with_noise(table, grid, slots, noise_keys)
                frames.append(_with_keys(table, grid, extra_keys))
            n_batches = -(-len(grid.split[0]) // first.batch_size)
            n_steps += len(slots) * len(grid.seeds) * len(grid.lrs) * first.epochs * n_batches
    order = {"loss": _first_seen(s.method for s in specs),
             "arch": _first_seen(s.model for s in specs),
             "noise_kind": _first_seen(r["noise_kind"] for r in map(_noise_row, specs))}
    keys = ["arch", *[k for k in noise_keys if k != "noise_realised_train"], *extra_keys,
            "fold", "seed", "loss"]
    summary = _ordered(pd.concat(summary_frames, ignore_index=True), keys, order)
    epochs = _ordered(pd.concat(epoch_frames, ignore_index=True), [*keys, "lr", "epoch"], order)
    info = {"n_models": len(specs), "model_steps": n_steps,
            "train_seconds": time.perf_counter() - started, "trainers": used,
            "per_model_losses": [m for m, p in used.items() if p == "torch"]}
    iterations = (_ordered(pd.concat(iteration_frames, ignore_index=True),
                           [*keys, "lr", "iteration"], order) if iteration_frames else None)
    transitions = (pd.concat(transition_frames, ignore_index=True) if transition_frames
                   else None)
    return RunResult(epochs, summary, info, iterations, transitions)


def _by_method(slots: list[tuple]) -> list[tuple]:
    """Slots reordered so each method's slots (its noise levels) are contiguous, methods in
    first-seen order: the stack calls each method's loss once per step for all of them."""
    methods = list(dict.fromkeys(method for method, _ in slots))
    return sorted(slots, key=lambda slot: methods.index(slot[0]))


def _two_stage(grid: _Grid, slot: tuple, dataset) -> bool:
    """Whether forward-with-T-hat ``slot`` trains stacked after the grid's CE at its noise:
    it only lacks a transition matrix, and that CE slot is itself stackable."""
    loss = grid.losses[slot]
    if "transition_matrix" not in loss.needs:
        return False
    ref = _reference_slot(grid, slot)
    if ref not in grid.slots:
        return False
    shape, C = dataset.input_shape, dataset.n_classes
    return (stacked_refusal(grid.spec_of[slot], loss, shape, C,
                            STACKED_NEEDS | {"transition_matrix"}) is None
            and stacked_refusal(grid.spec_of[ref], grid.losses[ref], shape, C) is None)


def _noise_row(spec: RunSpec) -> dict:
    """The noise columns' values of a spec (clean: kind ``none``, rate 0)."""
    from bench.train._labels import noise_of

    kind, rate, mapping = noise_of(spec)
    return {"noise_kind": kind, "noise_rate": rate, "noise_mapping": mapping}


def _noise_columns(specs: Sequence[RunSpec]) -> list[str]:
    """Noise columns of a job with noise (``noise_mapping`` only when a spec sets one)."""
    with_mapping = any(_noise_row(s)["noise_mapping"] is not None for s in specs)
    return [k for k in NOISE_COLUMNS if k != "noise_mapping" or with_mapping]


def _with_noise(table: pd.DataFrame, grid: _Grid, slots, keys: list[str]) -> pd.DataFrame:
    """Noise columns after ``lr``, from each row's slot (and seed, for the realised rate)."""
    by_name = {grid.names[slot]: grid.spec_of[slot] for slot in slots}
    at = list(table.columns).index("lr") + 1
    rows = {name: _noise_row(spec) for name, spec in by_name.items()}
    for offset, key in enumerate(keys):
        if key == "noise_realised_train":
            realised = {(name, seed): grid.labels[(spec.noise, seed)].realised_train
                        for name, spec in by_name.items() for seed in grid.seeds}
            values = [realised[(n, s)] for n, s in zip(table["loss"], table["seed"],
                                                        strict=True)]
        else:
            values = table["loss"].map(lambda n, k=key: rows[n][k])
        table.insert(at + offset, key, values)
    table["loss"] = table["loss"].map(lambda n: by_name[n].method)
    return table


def _with_keys(table: pd.DataFrame, grid: _Grid, keys: list[str]) -> pd.DataFrame:
    """Add the varying spec keys beyond the base ones, per method (after ``lr`` and the
    noise columns)."""
    if not keys:
        return table
    flat = {s.method: s.flat() for s in grid.specs}
    at = list(table.columns).index("lr") + 1
    at += sum(1 for c in table.columns[at:] if c in NOISE_COLUMNS)
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
