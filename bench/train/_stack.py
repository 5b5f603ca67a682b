"""Train G = S x L x R models of one dataset and one architecture together.

Layout: models are indexed ``(s, l, r)`` = (seed, slot, lr); ``m = l * R + r`` within a seed.
A slot is a loss trained on one set of labels: with label noise, slot l has its own noisy
labels per seed (``y`` ``[S, L, N]``), so every noise level of a dataset trains in one stack.
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

from bench.errors import LossbenchError
from bench.models import create_model, stacked_form
from bench.train._metrics import metric_names, metric_sums

SPLITS: tuple[str, ...] = ("train", "val", "test")
EVAL_CHUNK_FLOATS = 1 << 18  # floats per evaluation chunk (1 MB: metric passes stay in cache)


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


def _loss_grad(loss, logits, target, progress, **extra):
    """Per-sample loss values and d(sum of them)/d(logits) for one loss's slice of models.

    Uses the unchecked fast paths of ``bench.losses.Loss`` (the engine built the tensors
    itself, and a model going NaN mid-epoch must not stop the others: it is flagged at the end
    of the epoch); ``grad_unchecked`` is None for a loss without a closed form: autograd
    through the loss only.
    """
    grad = loss.grad_unchecked(logits, target, progress, **extra)
    if grad is not None:
        return loss.per_sample(logits, target, progress, **extra), grad
    with torch.enable_grad():
        z = logits.detach().requires_grad_(True)
        values = loss.per_sample(z, target, progress, **extra)
        (grad,) = torch.autograd.grad(values.sum(), z)
    return values.detach(), grad


def init_params(arch: str, n_in: int, n_out: int, seed: int) -> list[torch.Tensor]:
    """Initial ``[W1, b1(, W2, b2)]`` of one model, weights as ``[in, out]`` (x @ W + b),
    taken from the registered module itself (same seed -> same weights as the torch path)."""
    module = create_model(arch, input_shape=(n_in,), n_classes=n_out, seed=seed)
    out: list[torch.Tensor] = []
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            out += [layer.weight.detach().t().contiguous(), layer.bias.detach().clone()]
    return out


def dense_chain(arch: str, n_in: int, n_classes: int):
    """The model's stacked form; the stack trains chains of one or two dense layers."""
    chain = stacked_form(arch, input_shape=(n_in,), n_classes=n_classes)
    if chain is None or chain.n_layers not in (1, 2):
        raise LossbenchError(f"model {arch!r} is not stackable (the stacked engine trains "
                             "registered models whose stacked form has 1 or 2 dense layers)")
    return chain


class Stack:
    """Parameters, optimiser state and one-epoch training/evaluation of a model stack."""

    def __init__(self, spec: StackSpec, n_in: int, n_classes: int):
        self.spec = spec
        S, L, R = len(spec.seeds), len(spec.losses), len(spec.lrs)
        self.S, self.L, self.R, self.M = S, L, R, L * R
        self.I, self.C = n_in, n_classes
        chain = dense_chain(spec.arch, n_in, n_classes)
        self.O = chain.widths[1]  # first layer's width (the logits for one layer)
        self.mlp = chain.n_layers == 2
        per_seed = [init_params(spec.arch, n_in, n_classes, s) for s in spec.seeds]
        M, O = self.M, self.O
        # W1 [S, I, M*O], b1 [S, 1, M*O]: column block m holds model m's first layer
        W1 = torch.stack([p[0] for p in per_seed])  # [S, I, O]
        b1 = torch.stack([p[1] for p in per_seed])  # [S, O]
        self.params = [
            W1[:, :, None, :].expand(S, n_in, M, O).reshape(S, n_in, M * O).contiguous(),
            b1[:, None, None, :].expand(S, 1, M, O).reshape(S, 1, M * O).contiguous(),
        ]
        mult = [float(loss.lr_multiplier) for loss in spec.losses]
        lr = torch.tensor([m * float(x) for m in mult for x in spec.lrs],
                          dtype=torch.float32)  # [M], m = l * R + r
        self.lrs = [lr.repeat_interleave(O)[None, None, :]] * 2  # broadcast over W1/b1
        if self.mlp:
            W2 = torch.stack([p[2] for p in per_seed])  # [S, H, C]
            b2 = torch.stack([p[3] for p in per_seed])  # [S, C]
            self.params += [
                W2[:, None].expand(S, M, O, n_classes).contiguous(),
                b2[:, None, None, :].expand(S, M, 1, n_classes).contiguous(),
            ]
            self.lrs += [lr[None, :, None, None]] * 2
        # one flat buffer per kind (weights, grads, optimiser state, -lr): the optimiser step
        # is 2-3 ops on the flat buffers; params/grads/... are views of them per layer
        shapes = [p.shape for p in self.params]
        self.flat = torch.cat([p.reshape(-1) for p in self.params])
        self.flat_grad = torch.zeros_like(self.flat)
        self.flat_state = torch.zeros_like(self.flat)
        self.flat_state2 = torch.zeros_like(self.flat) if spec.optimizer == "adam" else None
        self.flat_neg_lr = torch.cat([(-x).expand(shape).reshape(-1)
                                      for x, shape in zip(self.lrs, shapes, strict=True)])
        self.params = self._views(self.flat, shapes)
        self.grads = self._views(self.flat_grad, shapes)
        self.state = self._views(self.flat_state, shapes)
        self.state2 = self._views(self.flat_state2, shapes) if self.flat_state2 is not None else []
        self.neg_lrs = self._views(self.flat_neg_lr, shapes)
        # losses given by f(log p_y) share one log-softmax per step (see train_epoch)
        self.fused = [li for li, loss in enumerate(spec.losses) if loss.depends_on_target_prob]
        self.n_steps = 0
        self.diverged = torch.zeros(S, L, R, dtype=torch.bool)
        # per-training-sample weights [S, R, n_train] of losses that need them (truncated Lq)
        self.weighted = [li for li, loss in enumerate(spec.losses)
                         if "sample_weights" in loss.needs]
        self.sample_weights: dict[int, torch.Tensor] = {}

    @staticmethod
    def _views(flat: torch.Tensor, shapes) -> list[torch.Tensor]:
        out, offset = [], 0
        for shape in shapes:
            n = math.prod(shape)
            out.append(flat[offset:offset + n].view(shape))
            offset += n
        return out

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
        h = torch.clamp_min(z, 0.0, out=z.new_empty(z.shape))  # ReLU, contiguous [S, M, n, O]
        return torch.matmul(h, self.params[2]).add_(self.params[3]), h

    # -- training ---------------------------------------------------------------------------
    def train_epoch(self, Xtr: torch.Tensor, ytr: torch.Tensor, perms: list[torch.Tensor],
                    progress: float) -> torch.Tensor:
        """One epoch over the batches of each seed's permutation; mean train loss ``[S, L, R]``.

        Losses of the form f(log p_y) (``depends_on_target_prob``) share one log-softmax and one
        gradient expression ``coef * (p - onehot)`` per step; their values are computed once
        at the end of the epoch from the stored log p_y (the schedule is constant within an
        epoch). Other losses are called per step on their slice of the stack.
        """
        S, L, R, M, C, B = self.S, self.L, self.R, self.M, self.C, self.spec.batch_size
        Xp = torch.stack([Xtr[p] for p in perms])  # [S, n, I]
        yp = torch.stack([ytr[min(si, len(ytr) - 1)][:, p]
                          for si, p in enumerate(perms)])  # [S, L or 1, n]
        n = Xp.shape[1]
        # this epoch's order of each weighted loss's per-sample weights: [S, R, n]
        wp = {li: torch.stack([w[si][:, p] for si, p in enumerate(perms)])
              for li, w in self.sample_weights.items()}
        fused = self.fused
        other = [li for li in range(L) if li not in fused]
        logp_y_all = torch.empty(S, L, R, n) if fused else None
        coef = torch.zeros(S, L, R, B)
        # losses whose coef is a + b p_y at this progress (the CE/EL mixes): one addcmul
        affine = {li: self.spec.losses[li].affine_coef(progress) for li in fused
                  if li not in wp}
        mix = [li for li, ab in affine.items() if ab is not None]
        fused_rest = [li for li in fused if li not in mix]
        if mix:
            ab = torch.tensor([affine[li] for li in mix])
            mix_alpha, mix_beta = (ab[:, k].view(1, -1, 1, 1) for k in (0, 1))
            mix = torch.tensor(mix) if len(mix) < L else slice(None)
        else:
            mix = None
        loss_sum = torch.zeros(S, L, R)
        n_batches = 0
        for a in range(0, n, B):
            xb, yb = Xp[:, a:a + B], yp[..., a:a + B]  # yb [S, L or 1, b]
            b = xb.shape[1]
            if self.mlp:  # model-major logits [S, M, b, C]
                logits, h = self.forward(xb)
            else:  # linear: batch-major [S, b, M, C], the contiguous matmul output
                logits, h = torch.baddbmm(self.params[1], xb, self.params[0]).view(S, b, M, C), None
            idx = self._model_targets(yb, sample_dim=2 if self.mlp else 1).unsqueeze(-1)
            if fused:
                cb = coef[..., :b]
                g = torch.log_softmax(logits, -1)
                logp_y = self._loss_major(g.gather(-1, idx).squeeze(-1))  # [S, L, R, b]
                logp_y_all[..., a:a + b] = logp_y
                if mix is not None:  # alpha + beta p_y for every CE/EL mix at once
                    cb[:, mix] = torch.addcmul(mix_alpha, mix_beta, logp_y[:, mix].exp())
                for li in fused_rest:
                    extra = {"sample_weights": wp[li][:, :, a:a + b]} if li in wp else {}
                    cb[:, li] = self.spec.losses[li].coef(logp_y[:, li], progress, **extra)
                c4 = (cb.reshape(S, M, b, 1) if self.mlp
                      else cb.permute(0, 3, 1, 2).reshape(S, b, M, 1))
                c4 = c4.mul(1.0 / b)  # 1/b: each model's batch mean
                g = g.exp_().mul_(c4).scatter_add_(-1, idx, c4.neg())
            else:
                g = torch.empty_like(logits)
            if other:
                lg, gv = self._loss_major(logits), self._loss_major(g)  # [S, L, R, b, C] views
                for li in other:
                    extra = {"sample_weights": wp[li][:, :, a:a + b]} if li in wp else {}
                    target = yb[:, min(li, yb.shape[1] - 1), None, :].expand(S, R, b)
                    values, grad = _loss_grad(self.spec.losses[li], lg[:, li], target, progress,
                                              **extra)
                    loss_sum[:, li] += values.mean(-1)
                    gv[:, li] = grad * (1.0 / b)
            self._backward(xb, g, h)
            self._step()
            n_batches += 1
        if fused:
            # mean over batches of each batch's mean: sample weight 1 / (its batch size)
            per_sample = torch.full((n,), 1.0 / B)
            if n % B:
                per_sample[n - n % B:] = 1.0 / (n % B)
            for li in fused:
                extra = {"sample_weights": wp[li]} if li in wp else {}
                values = self.spec.losses[li].value(logp_y_all[:, li], progress, **extra)
                loss_sum[:, li] = values @ per_sample
        return loss_sum / n_batches

    def _model_targets(self, y: torch.Tensor, sample_dim: int) -> torch.Tensor:
        """Labels ``[S or 1, L or 1, n]`` (one row per slot, or shared) as one per model:
        ``[S, M, n]`` (``sample_dim=2``, model-major) or ``[S, n, M]`` (``1``); a view
        (stride 0 over the models) when the slots share their labels."""
        n = y.shape[2]
        t = y[:, :, None, :].expand(self.S, self.L, self.R, n).reshape(self.S, self.M, n)
        return t if sample_dim == 2 else t.transpose(1, 2)

    def _loss_major(self, t: torch.Tensor) -> torch.Tensor:
        """A per-sample tensor of the training layout viewed ``[S, L, R, b, ...]``."""
        S, L, R = self.S, self.L, self.R
        if self.mlp:  # [S, M, b, ...]
            return t.view(S, L, R, *t.shape[2:])
        b = t.shape[1]  # linear: [S, b, M, ...]
        return t.view(S, b, L, R, *t.shape[3:]).movedim(1, 3)

    def _backward(self, xb, g, h) -> None:
        """Parameter gradients of each model's batch-mean loss from its d(loss)/d(logits) ``g``
        (already divided by the batch size; mlp: ``[S, M, b, C]``, linear: ``[S, b, M, C]``)."""
        S, M, O = self.S, self.M, self.O
        b = xb.shape[1]
        if self.mlp:
            torch.matmul(h.transpose(2, 3), g, out=self.grads[2])
            torch.sum(g, 2, keepdim=True, out=self.grads[3])
            dz = torch.matmul(g, self.params[2].transpose(2, 3))
            dz = torch.ops.aten.threshold_backward(dz, h, 0.0)  # ReLU'
            dz = dz.transpose(1, 2).reshape(S, b, M * O)  # [S, b, M*O]
        else:
            dz = g.view(S, b, M * O)
        torch.bmm(xb.transpose(1, 2), dz, out=self.grads[0])
        torch.sum(dz, 1, keepdim=True, out=self.grads[1])

    def _step(self) -> None:
        self.n_steps += 1
        p, grad, buf, neg_lr = self.flat, self.flat_grad, self.flat_state, self.flat_neg_lr
        if self.spec.optimizer == "sgd":
            m = self.spec.momentum
            if m:
                buf.mul_(m).add_(grad)
                p.addcmul_(buf, neg_lr)
            else:
                p.addcmul_(grad, neg_lr)
            return
        b1, b2 = self.spec.betas
        bc1 = 1 - b1 ** self.n_steps
        bc2_sqrt = math.sqrt(1 - b2 ** self.n_steps)
        v = self.flat_state2
        buf.lerp_(grad, 1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / bc2_sqrt).add_(self.spec.eps)
        p.addcmul_(buf / denom, neg_lr / bc1)

    @torch.no_grad()
    def update_sample_weights(self, Xtr: torch.Tensor, ytr: torch.Tensor, epoch: int,
                              n_epochs: int) -> None:
        """Recompute per-sample weights (truncated Lq pruning) from the current models and
        the labels they train on (``ytr`` ``[S or 1, L or 1, n]``)."""
        n = Xtr.shape[0]
        for li in self.weighted:  # the GCE paper starts with every weight at 1
            self.sample_weights.setdefault(li, torch.ones(self.S, self.R, n))
        due = [li for li in self.weighted if epoch in self.spec.losses[li].prune_epochs(n_epochs)]
        if not due:
            return
        chunk = max(1, EVAL_CHUNK_FLOATS // max(self.S * self.M * max(self.O, self.C), 1))
        for a in range(0, n, chunk):
            logits, _ = self.forward(Xtr[a:a + chunk])
            b = logits.shape[2]
            lg = logits.view(self.S, self.L, self.R, b, self.C)
            for li in due:
                y = ytr[:, min(li, ytr.shape[1] - 1), None, a:a + chunk]  # [S or 1, 1, b]
                target = y.expand(self.S, self.R, b)
                w = self.spec.losses[li].sample_weights_from(lg[:, li], target)
                self.sample_weights[li][:, :, a:a + chunk] = w.to(torch.float32)

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
            self._model_view(i, self.neg_lrs[i]).mul_(keep)

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean metrics ``[S, L, R, n_metrics]`` on all of ``X`` (chunked full-batch) against
        labels ``y`` ``[S or 1, L or 1, n]``."""
        n = X.shape[0]
        width = self.S * self.M * max(self.O, self.C)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(width, 1))
        total = None
        for a in range(0, n, chunk):
            yc = y[..., a:a + chunk]
            if self.mlp:  # [S, M, b, C]
                logits, _ = self.forward(X[a:a + chunk])
                sums = metric_sums(logits, self._model_targets(yc, 2), self.C)
            else:  # linear, batch-major [S, b, M, C]: the contiguous matmul output
                z = torch.matmul(X[a:a + chunk], self.params[0]).add_(self.params[1])
                logits = z.view(self.S, -1, self.M, self.C)
                sums = metric_sums(logits, self._model_targets(yc, 1), self.C, sample_dim=1)
            total = sums if total is None else total + sums
        return (total / n).view(self.S, self.L, self.R, -1)


def train_stack(spec: StackSpec, X: np.ndarray, y: np.ndarray, n_classes: int,
                split: tuple[np.ndarray, np.ndarray, np.ndarray],
                on_epoch: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Train the stack; per-epoch arrays ``[E, S, L, R]`` keyed ``train_loss``, ``diverged``,
    and ``<split>_<metric>`` for split in train/val/test (NaN from a model's divergence on).

    ``y``: the labels of every row ``[N]``, or one label vector per (seed, slot) ``[S, L, N]``
    (label noise: each slot trains, is selected and scored on its own labels)."""
    y = np.asarray(y)
    S, L = len(spec.seeds), len(spec.losses)
    if y.ndim not in (1, 3) or (y.ndim == 3 and y.shape[:2] != (S, L)):
        raise LossbenchError(f"train_stack: labels must be [N] or [S={S}, L={L}, N]; got "
                             f"shape {y.shape}")
    Xt = torch.from_numpy(np.ascontiguousarray(X, np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, np.int64))
    yt = yt[None, None] if yt.dim() == 1 else yt  # [S or 1, L or 1, N]
    parts = {name: (Xt[torch.from_numpy(idx)], yt[..., torch.from_numpy(idx)])
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
            stack.update_sample_weights(*parts["train"], epoch, E)
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
