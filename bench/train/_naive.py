"""Per-model path: one plain ``nn.Module`` + ``torch.optim`` optimiser per configuration.

Two jobs: it is the reference the stacked engine must reproduce (tests) and is timed against
(``python -m bench.perf``); and it trains the losses the stack does not handle (``needs`` the
stack lacks: two-scale trainable scales, COT's complement pass, a transition matrix estimated
from a first CE run). Same init (``build_module``), same data order (``order_generator``),
same metrics (``metric_sums``), same divergence rule; autograd for the backward.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from bench.models import create_model
from bench.train._metrics import metric_names, metric_sums
from bench.train._stack import SPLITS, StackSpec, order_generator


def weight_norm_product(model: torch.nn.Module) -> torch.Tensor:
    """R of the two-scale loss: product of the Frobenius norms of the weight matrices (detached)."""
    norms = [m.weight.detach().norm() for m in model if isinstance(m, torch.nn.Linear)]
    return torch.stack(norms).prod()


def _optimizer(spec: StackSpec, params, lr: float) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=spec.momentum)
    return torch.optim.Adam(params, lr=lr, betas=spec.betas, eps=spec.eps)


class _Model:
    """One configuration: module, loss (with its own state) and optimiser(s)."""

    def __init__(self, spec: StackSpec, loss, lr: float, seed: int, n_in: int, n_classes: int):
        self.loss = copy.deepcopy(loss) if getattr(loss, "needs", None) else loss
        self.needs = frozenset(getattr(loss, "needs", ()) or ())
        self.module = create_model(spec.arch, input_shape=(n_in,), n_classes=n_classes, seed=seed)
        self.scales: dict[str, torch.Tensor] = {}
        if "scale_params" in self.needs:
            self.scales = self.loss.init_scales(float(weight_norm_product(self.module)))
        params = list(self.module.parameters())
        params += [t for t in self.scales.values() if t.requires_grad]
        if "lr_multiplier" in self.needs:
            lr = lr * float(self.loss.lr_multiplier)
        self.opt = _optimizer(spec, params, lr)
        self.opt_complement = (_optimizer(spec, list(self.module.parameters()), lr)
                               if "complement_pass" in self.needs else None)
        self.weights: torch.Tensor | None = None

    def extra(self, idx: torch.Tensor | None = None) -> dict:
        out = {}
        if "scale_params" in self.needs or "weight_norm" in self.needs:
            out["weight_norm"] = weight_norm_product(self.module)
        if self.scales:
            out["scales"] = self.scales
        if self.weights is not None and idx is not None:
            out["sample_weights"] = self.weights[idx]
        return out

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """Logits used for evaluation (two-scale: rescaled as at test time)."""
        z = self.module(X)
        if self.scales:
            extra = self.extra()
            z = self.loss.eval_logits(z, extra["scales"], extra["weight_norm"])
        return z

    def step(self, xb: torch.Tensor, yb: torch.Tensor, idx: torch.Tensor,
             progress: float) -> float:
        values = _call(self.loss, self.module(xb), yb, progress, **self.extra(idx))
        value = values.mean()
        self.opt.zero_grad()
        value.backward()
        self.opt.step()
        if self.opt_complement is not None:  # COT: second pass on the same batch
            comp = self.loss.complement(self.module(xb), yb).mean()
            self.opt_complement.zero_grad()
            comp.backward()
            self.opt_complement.step()
        return float(value.detach())

    def finite(self) -> bool:
        tensors = [*self.module.parameters(), *self.scales.values()]
        return all(bool(torch.isfinite(t).all()) for t in tensors)


def _call(loss, logits, target, progress, **extra):
    fn = getattr(loss, "per_sample", loss)
    return fn(logits, target, progress, **extra)


def _estimate_transition(spec: StackSpec, model: _Model, seed: int, lr: float, Xtr, ytr,
                         n_in: int, n_classes: int) -> None:
    """Patrini et al.'s first stage: train CE, estimate T from its train-set probabilities."""
    from bench.losses import make_loss
    from bench.losses._noisy import estimate_transition_matrix

    stage = _Model(spec, make_loss("ce"), lr, seed, n_in, n_classes)
    gen = order_generator(seed, spec.fold)
    for epoch in range(spec.epochs):
        perm = torch.randperm(Xtr.shape[0], generator=gen)
        for a in range(0, len(perm), spec.batch_size):
            idx = perm[a:a + spec.batch_size]
            stage.step(Xtr[idx], ytr[idx], idx, epoch / spec.epochs)
    with torch.no_grad():
        probs = torch.softmax(stage.module(Xtr), -1)
    model.loss.set_transition(estimate_transition_matrix(probs))


def train_naive(spec: StackSpec, X: np.ndarray, y: np.ndarray, n_classes: int,
                split: tuple[np.ndarray, np.ndarray, np.ndarray],
                on_epoch: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Same outputs as ``train_stack`` (``[E, S, L, R]`` arrays), one model at a time."""
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y)
    parts = {name: (Xt[torch.from_numpy(idx)], yt[torch.from_numpy(idx)])
             for name, idx in zip(SPLITS, split, strict=True)}
    Xtr, ytr = parts["train"]
    n_in = Xt.shape[1]
    names = metric_names(n_classes)
    E, B = spec.epochs, spec.batch_size
    shape = (E, len(spec.seeds), len(spec.losses), len(spec.lrs))
    out = {"train_loss": np.full(shape, np.nan), "diverged": np.zeros(shape, bool)}
    out.update({f"{sp}_{m}": np.full(shape, np.nan) for sp in SPLITS for m in names})
    n_models = shape[1] * shape[2] * shape[3]
    for k, (si, li, ri) in enumerate(np.ndindex(*shape[1:])):
        seed, loss, lr = spec.seeds[si], spec.losses[li], spec.lrs[ri]
        model = _Model(spec, loss, lr, seed, n_in, n_classes)
        if "transition_matrix" in model.needs:
            _estimate_transition(spec, model, seed, lr, Xtr, ytr, n_in, n_classes)
        prune = model.loss.prune_epochs(E) if "sample_weights" in model.needs else []
        if "sample_weights" in model.needs:
            model.weights = torch.ones(Xtr.shape[0])
        gen = order_generator(seed, spec.fold)
        for epoch in range(E):
            perm = torch.randperm(Xtr.shape[0], generator=gen)
            if epoch in prune:
                with torch.no_grad():
                    model.weights = model.loss.sample_weights_from(model.module(Xtr), ytr).float()
            total, n_batches = 0.0, 0
            for a in range(0, len(perm), B):
                idx = perm[a:a + B]
                total += model.step(Xtr[idx], ytr[idx], idx, epoch / E)
                n_batches += 1
            train_loss = total / n_batches
            if not (np.isfinite(train_loss) and model.finite()):
                out["diverged"][epoch:, si, li, ri] = True
                break
            out["train_loss"][epoch, si, li, ri] = train_loss
            with torch.no_grad():
                for sp in SPLITS:
                    Xs, ys = parts[sp]
                    values = (metric_sums(model.logits(Xs), ys, n_classes) / len(ys)).numpy()
                    for j, name in enumerate(names):
                        out[f"{sp}_{name}"][epoch, si, li, ri] = values[j]
            if on_epoch is not None and k == n_models - 1:
                on_epoch(epoch)
    return out
