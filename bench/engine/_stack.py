"""Train G = S x L x R models of one dataset and one architecture together.

Layout: models are indexed ``(s, l, r)`` = (seed, loss, lr); ``m = l * R + r`` within a seed.
Models sharing a seed share their initial weights and data order (a paired design), so each
step gathers one batch per seed and the first layer is a single ``baddbmm`` over seeds with
all M models' weights side by side (``W1: [S, I, M*O]``). Logits are viewed ``[S, L, R, B, C]``
so each loss sees its models as one slice (a view) and is called once per step.

Backward is written by hand from ``loss.grad_logits`` (closed form) or, for a loss without
one, from autograd through the loss only; the model part (one or two linear layers) is
differentiated by hand. Each model's gradient is that of its own batch-mean loss: models never
share a reduction, so G does not rescale anything. SGD follows ``torch.optim.SGD`` (momentum
buffer ``b = m*b + g``, first step ``b = g``; ``p -= lr*b``); Adam follows ``torch.optim.Adam``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.engine._metrics import metric_names, metric_sums
from bench.models import hidden_size, init_params

SPLITS: tuple[str, ...] = ("train", "val", "test")
EVAL_CHUNK_FLOATS = 1 << 22  # activations per evaluation chunk (16 MB): bounds peak memory


@dataclass(frozen=True)
class StackSpec:
    """What one stacked run trains: the grid is seeds x losses x lrs on one split."""

    arch: str
    losses: Sequence  # loss objects (bench.losses API)
    lrs: Sequence[float]
    seeds: Sequence[int]
    epochs: int = 50
    batch_size: int = 8
    optimizer: str = "sgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    fold: int = 0


def order_generator(seed: int, fold: int) -> torch.Generator:
    """Data-order RNG of one (seed, fold); epoch e uses its e-th ``randperm``."""
    return torch.Generator().manual_seed(1_000_003 * int(seed) + int(fold))


def _loss_grad(loss, logits, target, progress):
    """Per-sample loss values and d(sum of them)/d(logits) for one loss's slice of models."""
    grad_fn = getattr(loss, "grad_logits", None)
    if grad_fn is not None:
        return loss(logits, target, progress), grad_fn(logits, target, progress)
    with torch.enable_grad():
        z = logits.detach().requires_grad_(True)
        values = loss(z, target, progress)
        (grad,) = torch.autograd.grad(values.sum(), z)
    return values.detach(), grad


class Stack:
    """Parameters, optimiser state and one-epoch training/evaluation of a model stack."""

    def __init__(self, spec: StackSpec, n_in: int, n_classes: int):
        self.spec = spec
        S, L, R = len(spec.seeds), len(spec.losses), len(spec.lrs)
        self.S, self.L, self.R, self.M = S, L, R, L * R
        self.I, self.C = n_in, n_classes
        self.O = hidden_size(spec.arch, n_in, n_classes)
        self.mlp = spec.arch == "mlp"
        per_seed = [init_params(spec.arch, n_in, n_classes, s) for s in spec.seeds]
        M, O = self.M, self.O
        # W1 [S, I, M*O], b1 [S, 1, M*O]: column block m holds model m's first layer
        W1 = torch.stack([p[0] for p in per_seed])  # [S, I, O]
        b1 = torch.stack([p[1] for p in per_seed])  # [S, O]
        self.params = [
            W1[:, :, None, :].expand(S, n_in, M, O).reshape(S, n_in, M * O).contiguous(),
            b1[:, None, None, :].expand(S, 1, M, O).reshape(S, 1, M * O).contiguous(),
        ]
        lr = torch.tensor([float(x) for x in spec.lrs], dtype=torch.float32).repeat(L)  # [M]
        self.lrs = [lr.repeat_interleave(O)[None, None, :]] * 2  # broadcast over W1/b1
        if self.mlp:
            W2 = torch.stack([p[2] for p in per_seed])  # [S, H, C]
            b2 = torch.stack([p[3] for p in per_seed])  # [S, C]
            self.params += [
                W2[:, None].expand(S, M, O, n_classes).contiguous(),
                b2[:, None, None, :].expand(S, M, 1, n_classes).contiguous(),
            ]
            self.lrs += [lr[None, :, None, None]] * 2
        self.state = [torch.zeros_like(p) for p in self.params]
        self.state2 = [torch.zeros_like(p) for p in self.params] if spec.optimizer == "adam" else []
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.neg_lrs = [-x for x in self.lrs]
        self.n_steps = 0
        self.diverged = torch.zeros(S, L, R, dtype=torch.bool)

    # -- model ------------------------------------------------------------------------------
    def _model_view(self, i: int, t: torch.Tensor) -> torch.Tensor:
        """``t`` (shaped as param i) viewed with an explicit ``[S, ..., L, R, ...]`` model axis."""
        S, L, R = self.S, self.L, self.R
        if i < 2:
            return t.view(S, t.shape[1], L, R, self.O)
        return t.view(S, L, R, *t.shape[2:])

    def forward(self, x: torch.Tensor):
        """Logits ``[S, M, n, C]`` for inputs ``x`` ``[S, n, I]`` or ``[n, I]``; and hidden."""
        S, M, O = self.S, self.M, self.O
        W1, b1 = self.params[0], self.params[1]
        z = torch.matmul(x, W1).add_(b1) if x.dim() == 2 else torch.baddbmm(b1, x, W1)
        n = z.shape[1]
        z = z.view(S, n, M, O).transpose(1, 2)  # [S, M, n, O]
        if not self.mlp:
            return z, None
        h = torch.relu(z)
        return torch.matmul(h, self.params[2]).add_(self.params[3]), h

    # -- training ---------------------------------------------------------------------------
    def train_epoch(self, Xtr: torch.Tensor, ytr: torch.Tensor, perms: list[torch.Tensor],
                    progress: float) -> torch.Tensor:
        """One epoch over the batches of each seed's permutation; mean train loss ``[S, L, R]``."""
        S, L, R, M, C, B = self.S, self.L, self.R, self.M, self.C, self.spec.batch_size
        Xp = torch.stack([Xtr[p] for p in perms])  # [S, n, I]
        yp = torch.stack([ytr[p] for p in perms])  # [S, n]
        n = Xp.shape[1]
        loss_sum = torch.zeros(S, L, R)
        n_batches = 0
        for a in range(0, n, B):
            xb, yb = Xp[:, a:a + B], yp[:, a:a + B]
            b = xb.shape[1]
            logits, h = self.forward(xb)
            lg = logits.view(S, L, R, b, C)
            target = yb[:, None, :].expand(S, R, b)
            g = torch.empty(S, L, R, b, C)
            for li, loss in enumerate(self.spec.losses):
                values, grad = _loss_grad(loss, lg[:, li], target, progress)
                loss_sum[:, li] += values.mean(-1)
                g[:, li] = grad
            self._backward(xb, g.view(S, M, b, C), h, 1.0 / b)
            self._step()
            n_batches += 1
        return loss_sum / n_batches

    def _backward(self, xb, g, h, scale: float) -> None:
        """Parameter gradients of each model's batch-mean loss, from d(loss sums)/d(logits)."""
        S, M, O = self.S, self.M, self.O
        b = xb.shape[1]
        if self.mlp:
            torch.matmul(h.transpose(2, 3), g, out=self.grads[2]).mul_(scale)
            torch.sum(g, 2, keepdim=True, out=self.grads[3]).mul_(scale)
            dz = torch.matmul(g, self.params[2].transpose(2, 3)).mul_(h > 0)
        else:
            dz = g
        dz = dz.transpose(1, 2).reshape(S, b, M * O)  # [S, b, M*O]
        torch.bmm(xb.transpose(1, 2), dz, out=self.grads[0]).mul_(scale)
        torch.sum(dz, 1, keepdim=True, out=self.grads[1]).mul_(scale)

    def _step(self) -> None:
        self.n_steps += 1
        if self.spec.optimizer == "sgd":
            m = self.spec.momentum
            for p, buf, grad, neg_lr in zip(self.params, self.state, self.grads, self.neg_lrs,
                                            strict=True):
                if m:
                    buf.mul_(m).add_(grad)
                    p.addcmul_(buf, neg_lr)
                else:
                    p.addcmul_(grad, neg_lr)
            return
        b1, b2 = self.spec.betas
        bc1 = 1 - b1 ** self.n_steps
        bc2_sqrt = math.sqrt(1 - b2 ** self.n_steps)
        for p, m1, v, grad, neg_lr in zip(self.params, self.state, self.state2, self.grads,
                                          self.neg_lrs, strict=True):
            m1.lerp_(grad, 1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.spec.eps)
            p.addcmul_(m1 / denom, neg_lr / bc1)

    # -- divergence -------------------------------------------------------------------------
    def check_divergence(self, train_loss: torch.Tensor) -> torch.Tensor:
        """Flag models with a non-finite loss or parameter, zero and freeze them; new flags."""
        bad = ~torch.isfinite(train_loss)
        for i, p in enumerate(self.params):
            v = self._model_view(i, p)
            rest = tuple(d for d in range(v.dim()) if d not in self._model_dims(i))
            bad |= ~torch.isfinite(v).all(dim=rest)
        new = bad & ~self.diverged
        if new.any():
            self.diverged |= new
            self._freeze(self.diverged)
        return new

    def _model_dims(self, i: int) -> tuple[int, ...]:
        return (0, 2, 3) if i < 2 else (0, 1, 2)

    def _freeze(self, mask: torch.Tensor) -> None:
        """Zero the parameters, optimiser state and lr of masked models: they stay inert."""
        for i in range(len(self.params)):
            shape = [1] * self._model_view(i, self.params[i]).dim()
            for d, size in zip(self._model_dims(i), (self.S, self.L, self.R), strict=True):
                shape[d] = size
            keep = (~mask).view(shape)
            for t in [self.params[i], self.state[i], *self.state2[i:i + 1]]:
                v = self._model_view(i, t)
                v.mul_(keep).nan_to_num_(0.0, 0.0, 0.0)
            lr_full = self.neg_lrs[i].expand_as(self.params[i]).clone()
            self._model_view(i, lr_full).mul_(keep)
            self.neg_lrs[i] = lr_full

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean metrics ``[S, L, R, n_metrics]`` on all of ``X`` (chunked full-batch)."""
        n = X.shape[0]
        width = self.S * self.M * max(self.O, self.C)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(width, 1))
        total = None
        for a in range(0, n, chunk):
            logits, _ = self.forward(X[a:a + chunk])
            sums = metric_sums(logits, y[a:a + chunk], self.C)
            total = sums if total is None else total + sums
        return (total / n).view(self.S, self.L, self.R, -1)


def train_stack(spec: StackSpec, X: np.ndarray, y: np.ndarray, n_classes: int,
                split: tuple[np.ndarray, np.ndarray, np.ndarray],
                on_epoch: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Train the stack; per-epoch arrays ``[E, S, L, R]`` keyed ``train_loss``, ``diverged``,
    and ``<split>_<metric>`` for split in train/val/test (NaN from a model's divergence on)."""
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y)
    parts = {name: (Xt[torch.from_numpy(idx)], yt[torch.from_numpy(idx)])
             for name, idx in zip(SPLITS, split, strict=True)}
    stack = Stack(spec, Xt.shape[1], n_classes)
    gens = [order_generator(s, spec.fold) for s in spec.seeds]
    n_train = parts["train"][0].shape[0]
    names = metric_names(n_classes)
    E = spec.epochs
    shape = (E, stack.S, stack.L, stack.R)
    out = {"train_loss": np.full(shape, np.nan), "diverged": np.zeros(shape, bool)}
    for sp in SPLITS:
        for name in names:
            out[f"{sp}_{name}"] = np.full(shape, np.nan)
    with torch.no_grad():
        for epoch in range(E):
            perms = [torch.randperm(n_train, generator=g) for g in gens]
            train_loss = stack.train_epoch(*parts["train"], perms, epoch / E)
            stack.check_divergence(train_loss)
            dead = stack.diverged.numpy()
            out["diverged"][epoch] = dead
            out["train_loss"][epoch] = np.where(dead, np.nan, train_loss.numpy())
            for sp in SPLITS:
                values = stack.evaluate(*parts[sp]).numpy()
                for k, name in enumerate(names):
                    out[f"{sp}_{name}"][epoch] = np.where(dead, np.nan, values[..., k])
            if on_epoch is not None:
                on_epoch(epoch)
    return out
