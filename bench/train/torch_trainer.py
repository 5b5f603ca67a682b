"""The per-model ``torch`` trainer: one registered model, one ``torch.optim`` optimiser, any loss.

It trains what the stacked engine cannot (any registered model, schedules, weight decay,
augmentation, AMP, any device, losses with state or extra passes) and is the reference the
stack is tested against: same init (``create_model``), same data order (``order_generator``:
one ``randperm`` per epoch), same per-sample loss values and batch means, same divergence
rule and metrics (``metric_sums``), so on what both can train they agree per epoch
(tests/unit/test_torch_trainer.py). One readable loop (nanoGPT's shape, STYLE.md section 6):
the loss is reached only through its public hooks (``bench.losses.Loss``), a checkpoint after
every epoch makes a killed run resume to byte-identical arrays.

Data: on the device as tensors when they fit (moved once, batches by indexing; uint8 images
stay uint8 there and become float32 / 255 per batch), else a ``torch.utils.data.DataLoader``
over the same batches (data too big for the device, or an ``X`` read from files by
``X.read(i)``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import LossbenchError
from bench.train._context import TrainContext
from bench.train._metrics import (
    dataset_score,
    metric_means,
    metric_names,
    metric_sums,
    super_class_map,
)
from bench.train._run import resolve_device
from bench.train._stack import SPLITS, order_generator

EVAL_BATCH = 1024  # samples per evaluation forward pass
HIST_BINS = 100  # histogram bins of width 0.01 on [0, 1] (max p, p_y) and [-1, 0] (δp)
ITER_SPLITS = ("val", "test")  # evaluated every ``spec.eval_every`` iterations
DEVICE_DATA_FRACTION = 0.25  # the data go on the device when they take at most this share
DATA_PATHS = ("auto", "device", "loader")


# -- optimisers and schedules (registries: spec name -> builder) -------------------------------
def _sgd(spec, params, lr: float) -> torch.optim.Optimizer:
    if spec.nesterov and spec.momentum == 0:
        raise LossbenchError("spec field 'nesterov': Nesterov momentum needs momentum > 0; "
                             f"got momentum={spec.momentum!r}")
    return torch.optim.SGD(params, lr=lr, momentum=spec.momentum, nesterov=spec.nesterov,
                           weight_decay=spec.weight_decay)


def _adam(spec, params, lr: float) -> torch.optim.Optimizer:
    """Adam with torch's L2 ``weight_decay`` (added to the gradient; not AdamW's decoupled)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=spec.weight_decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def _constant_factor(epoch: int) -> float:
    return 1.0


SCHEDULES: dict[str, Callable[..., Any]] = {
    "constant": lambda opt, spec: torch.optim.lr_scheduler.LambdaLR(opt, _constant_factor),
    "multistep": lambda opt, spec: torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=list(spec.milestones), gamma=spec.gamma),
    "cosine": lambda opt, spec: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs),
}


def make_scheduler(spec, optimizer: torch.optim.Optimizer):
    """The spec's lr schedule, stepped once per epoch (epoch e trains at its e-th value)."""
    return SCHEDULES[spec.schedule](optimizer, spec)


# -- data ---------------------------------------------------------------------------------------
def _host_array(X: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    """Rows ``idx`` of X as a tensor: floats as float32 (as the stack), uint8 / ints as they are."""
    part = np.asarray(X[idx])
    if np.issubdtype(part.dtype, np.floating):
        part = part.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(part))


class DeviceData:
    """Each split's X and y moved to the device once; batches are index lookups there."""

    def __init__(self, dataset, split, device: torch.device) -> None:
        self.parts = {}
        for name, idx in zip(SPLITS, split, strict=True):
            idx = np.asarray(idx, dtype=np.int64)
            self.parts[name] = (_host_array(dataset.X, idx).to(device),
                                torch.from_numpy(np.asarray(dataset.y)[idx]).to(device))
        self.device = device

    def n(self, split: str) -> int:
        return int(self.parts[split][1].shape[0])

    def train_batches(self, perm: torch.Tensor, batch_size: int) -> Iterator[tuple]:
        X, y = self.parts["train"]
        perm = perm.to(self.device)
        for a in range(0, len(perm), batch_size):
            idx = perm[a:a + batch_size]
            yield idx, X[idx], y[idx]

    def eval_batches(self, split: str) -> Iterator[tuple]:
        X, y = self.parts[split]
        for a in range(0, len(y), EVAL_BATCH):
            yield X[a:a + EVAL_BATCH], y[a:a + EVAL_BATCH]


class _SplitSamples(torch.utils.data.Dataset):
    """Sample k of one split: (k, x, y), x from ``X.read(i)`` (files) or ``X[i]``."""

    def __init__(self, X: Any, y: np.ndarray, idx: np.ndarray) -> None:
        self.X, self.y, self.idx = X, np.asarray(y), np.asarray(idx, dtype=np.int64)
        self.read = X.read if hasattr(X, "read") else X.__getitem__

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, k: int):
        i = int(self.idx[k])
        return k, torch.as_tensor(np.asarray(self.read(i))), int(self.y[i])


class LoaderData:
    """The same batches read by a ``DataLoader`` (workers, pinned memory on CUDA)."""

    def __init__(self, dataset, split, device: torch.device) -> None:
        self.sets = {name: _SplitSamples(dataset.X, dataset.y, idx)
                     for name, idx in zip(SPLITS, split, strict=True)}
        self.device = device
        cuda = device.type == "cuda"
        self.options = {"num_workers": min(8, (os.cpu_count() or 1) // 2) if cuda else 0,
                        "pin_memory": cuda}

    def n(self, split: str) -> int:
        return len(self.sets[split])

    def _load(self, loader) -> Iterator[tuple]:
        for k, x, y in loader:
            yield (k.to(self.device, non_blocking=True), x.to(self.device, non_blocking=True),
                   y.to(self.device, non_blocking=True))

    def train_batches(self, perm: torch.Tensor, batch_size: int) -> Iterator[tuple]:
        batches = [perm[a:a + batch_size].tolist() for a in range(0, len(perm), batch_size)]
        loader = torch.utils.data.DataLoader(self.sets["train"], batch_sampler=batches,
                                             **self.options)
        yield from self._load(loader)

    def eval_batches(self, split: str) -> Iterator[tuple]:
        loader = torch.utils.data.DataLoader(self.sets[split], batch_size=EVAL_BATCH,
                                             shuffle=False, **self.options)
        for _, x, y in self._load(loader):
            yield x, y


def make_data(dataset, split, device: torch.device, data_path: str = "auto",
              log: Callable[[str], None] = print):
    """``DeviceData`` when the splits fit on the device (always on the CPU), else
    ``LoaderData``; an ``X`` with ``read(i)`` (a file list) always goes through the loader."""
    if data_path not in DATA_PATHS:
        raise LossbenchError(f"data_path: expected one of {', '.join(DATA_PATHS)}; got "
                             f"{data_path!r}")
    if data_path == "auto":
        data_path = "loader" if hasattr(dataset.X, "read") else "device"
        if data_path == "loader":
            log(f"data: {dataset.name} is read from files (X.read); DataLoader")
        if data_path == "device" and device.type != "cpu":
            n = sum(len(idx) for idx in split)
            nbytes = n * math.prod(dataset.input_shape) * np.dtype(dataset.X.dtype).itemsize
            if nbytes > DEVICE_DATA_FRACTION * _device_memory(device):
                data_path = "loader"
                log(f"data: {nbytes / 2**30:.1f} GiB do not fit on {device}; DataLoader")
    return (LoaderData if data_path == "loader" else DeviceData)(dataset, split, device)


def _device_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory())
    return 1 << 62


# -- one model's training -----------------------------------------------------------------------
class Run:
    """Model, loss, optimisers and RNGs of one spec; ``train_epoch`` / ``evaluate``."""

    def __init__(self, spec, dataset, data, device: torch.device,
                 augment: Callable | None, log: Callable[[str], None]) -> None:
        from bench.losses import make_loss
        from bench.models import create_model, model_params_for

        self.spec, self.data, self.device, self.augment = spec, data, device, augment
        self.n_classes = int(dataset.n_classes)
        meta = getattr(dataset, "meta", None) or {}
        self.super_class = None if meta.get("super_class") is None else super_class_map(
            meta["super_class"], self.n_classes).to(device)
        self.score = dataset_score(dataset)
        self.metric_names = metric_names(self.n_classes, self.super_class, self.score)
        params = model_params_for(spec.model, dataset, dict(spec.model_params))
        self.model = create_model(spec.model, input_shape=dataset.input_shape,
                                  n_classes=self.n_classes, seed=spec.seed, **params).to(device)
        self.channels_last = device.type == "cuda" and len(dataset.input_shape) == 3
        if self.channels_last:  # 4-D batches [B, C, H, W]: NHWC is faster for convolutions
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss = make_loss(spec.loss, **dict(spec.loss_params))
        self.loss.bind(self.model)
        lr = spec.lr * float(self.loss.lr_multiplier)
        params = [*self.model.parameters(), *self.loss.parameters()]
        self.optimizers = [OPTIMIZERS[spec.optimizer](spec, params, lr)]
        self.complement = "complement_pass" in self.loss.needs
        if self.complement:  # COT: a second optimiser on the model for the complement pass
            self.optimizers.append(OPTIMIZERS[spec.optimizer](spec, self.model.parameters(), lr))
        self.schedulers = [make_scheduler(spec, opt) for opt in self.optimizers]
        self.amp = bool(spec.amp) and device.type == "cuda"
        if spec.amp and not self.amp:
            log(f"amp: ignored on {device.type} (float16 autocast is used on CUDA only)")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        # the model at the best validation accuracy so far (ties: later), for losses that
        # need it (truncated Lq prunes with it, as the GCE paper does)
        self.keep_best = "best_model" in self.loss.needs
        self.best_val, self.best_state = -math.inf, None
        self._best_model: torch.nn.Module | None = None
        self.order = order_generator(spec.seed, spec.fold)
        self.augment_rng = torch.Generator(device=device).manual_seed(
            2_000_003 * int(spec.seed) + int(spec.fold) + 1)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.float16)

    def inputs(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 images -> float32 / 255; other floats -> float32; token ids unchanged."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        elif x.is_floating_point() and x.dtype != torch.float32:
            x = x.float()
        if self.augment is not None:
            x = self.augment(x, self.augment_rng, train)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _backward_step(self, value: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(value).backward()
        self.scaler.step(opt)
        self.scaler.update()

    def train_epoch(self, epoch: int, ctx: TrainContext,
                    iterations: IterationLog | None = None) -> float:
        """One epoch in this epoch's order; the mean over batches of each batch's mean loss.
        ``iterations``: metrics of every batch before its step, and of the val / test sets
        every ``spec.eval_every`` steps."""
        spec, loss, model = self.spec, self.loss, self.model
        perm = torch.randperm(self.data.n("train"), generator=self.order)
        loss.epoch_start(epoch, spec.epochs, ctx)
        progress = epoch / spec.epochs
        model.train()
        means = []
        step = epoch * self.n_batches
        for idx, xb, yb in self.data.train_batches(perm, spec.batch_size):
            xb = self.inputs(xb, train=True)
            with self.autocast():
                logits = model(xb)
            values = loss.per_sample(logits.float(), yb, progress,
                                     **loss.step_inputs(model, idx))
            value = values.mean()
            if iterations is not None:
                with torch.no_grad():
                    z = loss.eval_logits(logits.detach().float(), model)
                    iterations.add_batch(value.detach(), self.metric_sums(z, yb), len(yb))
            self._backward_step(value, self.optimizers[0])
            if self.complement:  # COT's second pass on the same batch
                with self.autocast():
                    logits = model(xb)
                self._backward_step(loss.complement(logits.float(), yb).mean(),
                                    self.optimizers[1])
            means.append(value.detach())
            step += 1
            if iterations is not None and step % spec.eval_every == 0:
                iterations.record(step, self)
        for scheduler in self.schedulers:
            scheduler.step()
        return float(torch.stack(means).sum()) / len(means)

    @property
    def n_batches(self) -> int:
        return -(-self.data.n("train") // self.spec.batch_size)

    def metric_sums(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return metric_sums(z, y, self.n_classes, super_class=self.super_class, score=self.score)

    def metric_means(self, sums: torch.Tensor, n: int) -> torch.Tensor:
        return metric_means(sums, n, self.n_classes, self.score)

    def finite(self) -> bool:
        tensors = [*self.model.parameters(), *self.loss.parameters()]
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    @torch.no_grad()
    def logits(self, split: str, model: torch.nn.Module | None = None
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(raw logits of ``model`` (default: the one trained) as float32, targets) per
        evaluation batch, in split order."""
        model = self.model if model is None else model
        model.eval()
        try:
            for xb, yb in self.data.eval_batches(split):
                with self.autocast():
                    z = model(self.inputs(xb, train=False))
                yield z.float(), yb
        finally:
            model.train()

    def train_logits(self) -> torch.Tensor:
        return torch.cat([z for z, _ in self.logits("train")])

    def note_val(self, val_acc: float) -> None:
        """Keep the weights of a new best validation accuracy (ties: the later epoch)."""
        if self.keep_best and math.isfinite(val_acc) and val_acc >= self.best_val:
            self.best_val = val_acc
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def best_train_logits(self) -> torch.Tensor:
        """Training-set logits of the best-validation model so far (the current model before
        any epoch was evaluated)."""
        if self.best_state is None:
            return self.train_logits()
        if self._best_model is None:
            self._best_model = copy.deepcopy(self.model)
        self._best_model.load_state_dict(self.best_state)
        return torch.cat([z for z, _ in self.logits("train", self._best_model)])

    @torch.no_grad()
    def evaluate(self, split: str, keep: bool = False):
        """Mean metrics ``[n_metrics]`` (numpy), and per sample (y, p_y, argmax, p_max) if
        ``keep``."""
        total, kept = None, []
        for z, yb in self.logits(split):
            z = self.loss.eval_logits(z, self.model)
            sums = self.metric_sums(z, yb)
            total = sums if total is None else total + sums
            if keep:
                p = torch.softmax(z, -1)
                p_max, argmax = p.max(-1)
                kept.append((yb, p.gather(-1, yb[:, None]).squeeze(-1), argmax, p_max))
        means = self.metric_means(total, self.data.n(split)).cpu().numpy()
        if not keep:
            return means, None
        columns = zip(*kept, strict=True)
        return means, {name: torch.cat(parts).cpu().numpy() for name, parts in
                       zip(("y", "p_y", "argmax", "p_max"), columns, strict=True)}

    # -- checkpoint -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {"model": self.model.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "scaler": self.scaler.state_dict(), "loss": self.loss.state_dict(),
                "best": {"val": self.best_val, "state": self.best_state},
                "rng": {"order": self.order.get_state(),
                        "augment": self.augment_rng.get_state(),
                        "torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if cuda else []}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for obj, s in zip([*self.optimizers, *self.schedulers],
                          [*state["optimizers"], *state["schedulers"]], strict=True):
            obj.load_state_dict(s)
        self.scaler.load_state_dict(state["scaler"])
        self.loss.load_state_dict(state["loss"])
        best = state.get("best") or {}
        self.best_val = float(best.get("val", -math.inf))
        self.best_state = best.get("state")
        rng = state["rng"]
        self.order.set_state(rng["order"])
        self.augment_rng.set_state(rng["augment"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(rng["cuda"])


class IterationLog:
    """Metrics every ``spec.eval_every`` optimiser steps (the two-scale paper records test
    accuracy every 2,000 iterations on CIFAR and every 100 on MNIST, Figs. 1, 8, 9).

    Per record (``iter_`` arrays, one entry per record): ``iteration`` (steps done),
    ``epoch`` (= iteration / batches per epoch), ``train_loss`` (mean batch loss since the
    previous record), ``batch_<metric>`` (the training batches since the previous record,
    each scored before its step: the paper's "accuracy for the batch used", Sec. 3.2) and
    ``val_`` / ``test_<metric>`` (the whole split). The batch sums since the last record are
    state (``state_dict``): a record may span an epoch boundary, where checkpoints are taken.
    """

    def __init__(self, run: Run) -> None:
        spec = run.spec
        n = spec.epochs * run.n_batches // spec.eval_every
        steps = spec.eval_every * np.arange(1, n + 1, dtype=np.int64)
        self.arrays: dict[str, np.ndarray] = {"iter_iteration": steps,
                                              "iter_epoch": steps / run.n_batches,
                                              "iter_train_loss": np.full(n, np.nan)}
        for part in ("batch", *ITER_SPLITS):
            self.arrays.update({f"iter_{part}_{m}": np.full(n, np.nan)
                                for m in run.metric_names})
        self.every, self.names = spec.eval_every, run.metric_names
        self._reset()

    def _reset(self) -> None:
        self.sums, self.loss_sum, self.n, self.n_batches = None, None, 0, 0

    def add_batch(self, value: torch.Tensor, sums: torch.Tensor, n: int) -> None:
        """One training batch: its mean loss and metric sums (device tensors: no sync)."""
        self.sums = sums if self.sums is None else self.sums + sums
        self.loss_sum = value if self.loss_sum is None else self.loss_sum + value
        self.n, self.n_batches = self.n + n, self.n_batches + 1

    def record(self, step: int, run: Run) -> None:
        """Record ``step``: the batches since the last record, then val and test."""
        j = step // self.every - 1
        self.arrays["iter_train_loss"][j] = float(self.loss_sum) / self.n_batches
        batch = run.metric_means(self.sums, self.n).cpu().numpy()
        state = run.augment_rng.get_state()  # evaluation must not move the training streams
        for part, values in [("batch", batch),
                             *((sp, run.evaluate(sp)[0]) for sp in ITER_SPLITS)]:
            for k, name in enumerate(self.names):
                self.arrays[f"iter_{part}_{name}"][j] = values[k]
        run.augment_rng.set_state(state)
        self._reset()

    def state_dict(self) -> dict[str, Any]:
        return {"arrays": {k: torch.from_numpy(v.copy()) for k, v in self.arrays.items()},
                "sums": None if self.sums is None else self.sums.cpu(),
                "loss_sum": None if self.loss_sum is None else self.loss_sum.cpu(),
                "n": self.n, "n_batches": self.n_batches}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        for key, value in state["arrays"].items():
            self.arrays[key][:] = value.numpy()
        self.sums, self.loss_sum = (None if state[k] is None else state[k].to(device)
                                    for k in ("sums", "loss_sum"))
        self.n, self.n_batches = int(state["n"]), int(state["n_batches"])


def _context(run: Run, dataset, split, augment, log) -> TrainContext:
    """The hooks' view of ``run``; ``reference_probs`` trains another run on the same data."""
    targets = torch.from_numpy(np.asarray(dataset.y)[np.asarray(split[0])]).to(run.device)

    def reference_probs(loss_id: str) -> torch.Tensor:
        spec = run.spec.replace(loss=loss_id, loss_params=())
        log(f"{run.spec.method}: training the reference model ({loss_id}, same spec, "
            f"{spec.epochs} epochs)")
        ref = Run(spec, dataset, run.data, run.device, augment, log)
        ref_ctx = _context(ref, dataset, split, augment, log)
        ref.loss.prepare(ref_ctx)
        for epoch in range(spec.epochs):
            ref.train_epoch(epoch, ref_ctx)
        probs = torch.softmax(ref.train_logits(), -1)
        if not bool(torch.isfinite(probs).all()):
            raise LossbenchError(f"{run.spec.method}: the reference run with loss {loss_id!r} "
                                 f"diverged at lr={spec.lr}; no reference probabilities")
        return probs

    return TrainContext(n_train=run.data.n("train"), device=run.device, train_targets=targets,
                        train_logits=run.train_logits, reference_probs=reference_probs,
                        best_train_logits=run.best_train_logits)


# -- the loop -----------------------------------------------------------------------------------
def _empty_arrays(epochs: int, names: list[str]) -> dict[str, np.ndarray]:
    out = {"train_loss": np.full(epochs, np.nan), "diverged": np.zeros(epochs, bool)}
    out.update({f"{sp}_{m}": np.full(epochs, np.nan) for sp in SPLITS for m in names})
    return out


def _check_spec(spec, predictions_dir: Path | None, augment, log) -> None:
    if spec.save_predictions_at and predictions_dir is None:
        raise LossbenchError("spec field 'save_predictions_at': needs predictions_dir "
                             "(where the per-sample test predictions go)")
    if spec.augment != "none" and augment is None:
        log(f"augment: spec names {spec.augment!r} but no augment callable was given; "
            "training without augmentation")


def _write_predictions(path: Path, test_idx: np.ndarray, kept: dict[str, np.ndarray]) -> None:
    """Per test sample: dataset row ``index``, label, p_y, predicted class, 0/1 correct."""
    import pandas as pd

    from bench.io import write_csv

    frame = pd.DataFrame({"index": np.asarray(test_idx, dtype=np.int64), "y": kept["y"],
                          "p_y": kept["p_y"], "argmax": kept["argmax"],
                          "correct": (kept["y"] == kept["argmax"]).astype(np.int64)})
    write_csv(path, frame, float_format="%.6g")


def histograms(kept: dict[str, np.ndarray], bins: int = HIST_BINS):
    """Binned counts of the test-set distributions of the two-scale paper (Sec. 3.2): max p
    over all samples (Fig. 4), p_y over all samples (Fig. 5), δp = p_y - max_i p_i (eq. 19)
    over the misclassified ones (Fig. 6). Long table: ``quantity, lo, hi, count`` (bins
    [lo, hi), the last one closed, as ``numpy.histogram``)."""
    import pandas as pd

    wrong = kept["argmax"] != kept["y"]
    parts = [("max_p", kept["p_max"], (0.0, 1.0)), ("p_y", kept["p_y"], (0.0, 1.0)),
             ("delta_p", (kept["p_y"] - kept["p_max"])[wrong], (-1.0, 0.0))]
    frames = []
    for name, values, (lo, hi) in parts:
        counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
        frames.append(pd.DataFrame({"quantity": name, "lo": edges[:-1], "hi": edges[1:],
                                    "count": counts.astype(np.int64)}))
    return pd.concat(frames, ignore_index=True)


def _write_epoch_files(folder: Path, spec, epoch: int, test_idx: np.ndarray,
                       kept: dict[str, np.ndarray]) -> None:
    """``<run_id>-epoch<e>.csv.gz`` (predictions) and ``<run_id>-epoch<e>-hist.csv``."""
    from bench.io import write_csv

    stem = Path(folder) / f"{spec.run_id}-epoch{epoch}"
    _write_predictions(stem.with_name(stem.name + ".csv.gz"), test_idx, kept)
    write_csv(stem.with_name(stem.name + "-hist.csv"), histograms(kept), float_format="%.6g")


def fit_torch(spec, dataset, split: tuple[np.ndarray, np.ndarray, np.ndarray], *,
              checkpoint_dir: Path | None = None, augment: Callable | None = None,
              log: Callable[[str], None] = print, on_epoch: Callable[[int], None] | None = None,
              predictions_dir: Path | None = None,
              data_path: str = "auto") -> dict[str, np.ndarray]:
    """Train one ``RunSpec`` on ``dataset`` with (train, val, test) index arrays ``split``.

    Returns per-epoch arrays of length ``spec.epochs``: ``train_loss``, ``diverged`` (bool)
    and ``<split>_<metric>`` for split in train/val/test and ``metric_names(n_classes,
    super_class, score)`` (the per-model slice of ``train_stack``'s output; NaN from a
    divergence on, when training stops; the super-class columns when
    ``dataset.meta["super_class"]`` maps classes to super-classes; ``<split>_score`` when the
    dataset declares its official metric, ``dataset_score``). With ``spec.eval_every`` > 0,
    also the ``iter_`` arrays of ``IterationLog``, one entry per ``eval_every`` steps
    (``iterations_table`` makes them long). ``spec.save_predictions_at`` epochs write, in
    ``predictions_dir``, the test predictions and their histograms (``histograms``).
    ``augment(x, generator, train)`` transforms float batches (``train=False`` at
    evaluation). With ``checkpoint_dir``, ``<run_id>.pt`` is written after every epoch and a
    rerun of the same spec resumes from it; it is removed when the run completes.
    ``data_path``: ``auto`` (device tensors when they fit), or force ``device`` / ``loader``.
    """
    from tqdm import tqdm

    _check_spec(spec, predictions_dir, augment, log)
    device = torch.device(resolve_device(spec.device))
    data = make_data(dataset, split, device, data_path, log)
    run = Run(spec, dataset, data, device, augment, log)
    ctx = _context(run, dataset, split, augment, log)
    names = run.metric_names
    out = _empty_arrays(spec.epochs, names)
    iterations = IterationLog(run) if spec.eval_every else None
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{spec.run_id}.pt"
    start = 0
    if path is not None and path.exists():
        start = _resume(run, out, iterations, path, log)
    else:
        run.loss.prepare(ctx)
    saves = set(spec.save_predictions_at)
    bar = tqdm(total=spec.epochs, initial=start, disable=not spec.progress, leave=False,
               desc=f"{spec.model} {spec.method} lr={spec.lr:g} seed={spec.seed}")
    for epoch in range(start, spec.epochs):
        train_loss = run.train_epoch(epoch, ctx, iterations)
        if not (math.isfinite(train_loss) and run.finite()):
            out["diverged"][epoch:] = True
            log(f"{spec.method} lr={spec.lr:g} seed={spec.seed}: diverged in epoch {epoch}")
            break
        out["train_loss"][epoch] = train_loss
        for sp in SPLITS:
            keep = sp == "test" and epoch + 1 in saves
            values, kept = run.evaluate(sp, keep)
            for j, name in enumerate(names):
                out[f"{sp}_{name}"][epoch] = values[j]
            if keep:
                _write_epoch_files(predictions_dir, spec, epoch + 1, split[2], kept)
        run.note_val(float(out["val_acc"][epoch]))
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4g}", val_acc=f"{out['val_acc'][epoch]:.3f}")
        if path is not None and epoch + 1 < spec.epochs:
            _save(run, out, iterations, epoch + 1, path)
        if on_epoch is not None:
            on_epoch(epoch)
    bar.close()
    if path is not None:
        path.unlink(missing_ok=True)
    return out if iterations is None else {**out, **iterations.arrays}


def _save(run: Run, out: dict[str, np.ndarray], iterations: IterationLog | None,
          epochs_done: int, path: Path) -> None:
    from bench.io import atomic_write

    state = {"run_id": run.spec.run_id, "epoch": epochs_done, "run": run.state_dict(),
             "arrays": {k: torch.from_numpy(v.copy()) for k, v in out.items()},
             "iterations": None if iterations is None else iterations.state_dict()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _resume(run: Run, out: dict[str, np.ndarray], iterations: IterationLog | None,
            path: Path, log) -> int:
    """Load ``path`` into ``run`` and ``out``; the number of epochs it had completed."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file: one line, the fix
        raise LossbenchError(f"{path}: unreadable checkpoint ({type(err).__name__}); delete "
                             "it to restart the run") from None
    if state.get("run_id") != run.spec.run_id:
        raise LossbenchError(f"{path}: checkpoint of run {state.get('run_id')!r}, not "
                             f"{run.spec.run_id!r}; delete it to restart the run")
    run.load_state_dict(state["run"])
    for key, value in state["arrays"].items():
        out[key][:] = value.numpy()
    if iterations is not None:
        iterations.load_state_dict(state["iterations"], run.device)
    log(f"{run.spec.method} lr={run.spec.lr:g} seed={run.spec.seed}: resumed after epoch "
        f"{state['epoch']} from {path}")
    return int(state["epoch"])


def fit_torch_grid(base, methods: Sequence[tuple[str, Mapping[str, Any]]], lrs: Sequence[float],
                   seeds: Sequence[int], dataset, split, **kwargs: Any) -> dict[str, np.ndarray]:
    """``fit_torch`` for each (seed, method, lr) of a grid, one model at a time, as
    ``[E, S, L, R]`` arrays laid out as ``train_stack``'s (methods = (loss id, params))."""
    out: dict[str, np.ndarray] = {}
    for si, seed in enumerate(seeds):
        for li, (loss_id, params) in enumerate(methods):
            for ri, lr in enumerate(lrs):
                spec = base.replace(loss=loss_id, loss_params=dict(params), lr=lr, seed=seed)
                for key, values in fit_torch(spec, dataset, split, **kwargs).items():
                    if key not in out:
                        shape = (len(values), len(seeds), len(methods), len(lrs))
                        out[key] = np.zeros(shape, values.dtype)
                    out[key][:, si, li, ri] = values
    return out
