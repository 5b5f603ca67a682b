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
differentiated by hand. Losses with scales of their own and R (two-scale) get them per model
from ``bench.train._scales``: the scales are one more stack parameter, trained by the same
optimiser step. A step is ~20 tensor ops whatever G: on these tiny matrices each op
costs its dispatch more than its arithmetic, so every step writes into buffers allocated once
(``_Buffers``), per-epoch index/batch views are made once per epoch, and evaluation is
deferred: each epoch's weights are kept (one copy of the flat buffer) and the metrics of up to
several epochs are computed together, the epochs stacked as one more batch dimension of
the same matrix products (the results are bitwise those of one epoch at a time).

Each model's gradient is that of its own batch-mean loss: models never
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
from bench.train._metrics import check_score, metric_means, metric_names, metric_sums
from bench.train._scales import StackScales

SPLITS: tuple[str, ...] = ("train", "val", "test")
EVAL_CHUNK_FLOATS = 1 << 18  # floats per evaluation chunk (1 MB: metric passes stay in cache)
EVAL_FLOATS = 1 << 22  # floats per evaluation pass over several epochs (16 MB)
SNAPSHOT_FLOATS = 1 << 24  # kept weights awaiting evaluation (64 MB)


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
    # a group id per slot: consecutive slots with one id (the same method on other labels,
    # e.g. one loss at every noise level) share one loss call per step; None: one call each
    slot_groups: Sequence[int] | None = None
    score: str | None = None  # the dataset's official metric (bench.train._metrics.SCORES)


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


def _slot_groups(ids: Sequence[int] | None, L: int) -> list[tuple[int, int]]:
    """Runs ``(start, stop)`` of consecutive slots with one group id (each slot alone
    without ids)."""
    if ids is None:
        return [(li, li + 1) for li in range(L)]
    if len(ids) != L:
        raise LossbenchError(f"StackSpec.slot_groups: expected {L} ids; got {len(ids)}")
    out, start = [], 0
    for li in range(1, L + 1):
        if li == L or ids[li] != ids[start]:
            out.append((start, li))
            start = li
    return out


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


class _Buffers:
    """Every tensor one training step writes, for batch size ``b``, allocated once (with the
    views the step's ops read and write through)."""

    def __init__(self, stack: Stack, b: int) -> None:
        S, L, R, M, O, C = stack.S, stack.L, stack.R, stack.M, stack.O, stack.C
        self.z = torch.empty(S, b, M * O)  # first layer's output (linear: the logits)
        if stack.mlp:
            self.zt = self.z.view(S, b, M, O).transpose(1, 2)  # [S, M, b, O]
            self.h = torch.empty(S, M, b, O)
            self.h3 = self.h.view(S * M, b, O)
            self.h3t = self.h3.transpose(1, 2)
            self.logits = torch.empty(S, M, b, C)
            self.logits3 = self.logits.view(S * M, b, C)
            self.dzm = torch.empty(S * M, b, O)  # g W2^T, model-major
            self.dzm4 = self.dzm.view(S, M, b, O)
            self.dz = torch.empty(S, b, M * O)  # ReLU' applied, batch-major (as z)
            self.dzt = self.dz.view(S, b, M, O).transpose(1, 2)
            shape = (S, M, b, 1)
        else:
            self.logits = self.z.view(S, b, M, C)
            shape = (S, b, M, 1)
        self.g = torch.empty_like(self.logits)  # log-softmax, then d(loss)/d(logits)
        self.g3 = self.g.view(S * M, b, C)
        self.p, self.c, self.cneg = (torch.empty(shape) for _ in range(3))
        # the losses' coefs [S, L, R, b] (a view of c; each slot group writes its slice)
        self.c_lm = self.c.view(S, L, R, b) if stack.mlp else \
            self.c.view(S, b, L, R).movedim(1, 3)
        self.c_slots = {a: self.c_lm[:, a:z] for a, z in stack.groups}  # per slot group
        if not stack.mlp:
            self.dz = self.g.view(S, b, M * C)  # the logits' gradient is layer 1's
        # 1/b as a 0-dim float32 tensor: the same product as the Python float, without the
        # per-op cast of a wrapped scalar
        self.inv_b = torch.tensor(1.0 / b, dtype=torch.float32)


class Stack:
    """Parameters, optimiser state and one-epoch training/evaluation of a model stack."""

    def __init__(self, spec: StackSpec, n_in: int, n_classes: int):
        self.spec = spec
        self.score = check_score(spec.score, "StackSpec.score")
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
        # losses with scales of their own (two-scale): one more parameter [S, M, K] at the end
        self.scales = StackScales(spec.losses, S, L, R, O, self.mlp) \
            if StackScales.wanted(spec.losses) else None
        if self.scales is not None:
            value, trainable = self.scales.initial(self.params)
            self.params.append(value)
            self.lrs.append(lr[None, :, None] * trainable)
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
        self.groups = _slot_groups(spec.slot_groups, L)  # (start, stop) runs of slots
        self.n_steps = 0
        self.diverged = torch.zeros(S, L, R, dtype=torch.bool)
        # per-training-sample weights [S, R, n_train] of losses that need them (truncated Lq)
        self.weighted = [li for li, loss in enumerate(spec.losses)
                         if "sample_weights" in loss.needs]
        self.sample_weights: dict[int, torch.Tensor] = {}
        self._buffers: dict[int, _Buffers] = {}  # per batch size
        # SGD momentum as a 0-dim float32 tensor (the float32 product, no per-step cast)
        self._momentum = torch.tensor(spec.momentum, dtype=torch.float32) \
            if spec.momentum else None
        self._store: torch.Tensor | None = None  # log p_y of the epoch [S, M, n]
        # each model's weights at its best validation accuracy so far (ties: later epoch),
        # kept when a loss prunes with them or a reference model is asked for
        self.best_flat: torch.Tensor | None = None
        self.best_val = torch.full((S, L, R), -math.inf, dtype=torch.float64)
        self._model_ids: torch.Tensor | None = None

    def keep_best(self) -> None:
        """Start keeping each model's best-validation weights (``note_val``)."""
        if self.best_flat is None:
            self.best_flat = self.flat.clone()
            self._model_ids = self._flat_model_ids()

    def _flat_model_ids(self) -> torch.Tensor:
        """The model number ``(s * L + l) * R + r`` of every element of the flat buffer."""
        ids = torch.empty(self.flat.numel(), dtype=torch.int64)
        grid = torch.arange(self.S * self.L * self.R).view(self.S, self.L, self.R)
        for i, view in enumerate(self._views(ids, [p.shape for p in self.params])):
            v = self._model_view(i, view)
            v.copy_(grid.view(self._model_shape(i)).expand(v.shape))
        return ids

    def _model_shape(self, i: int) -> list[int]:
        """Parameter ``i``'s model view with every non-model dimension 1: an ``[S, L, R]``
        per-model tensor viewed so it broadcasts over that parameter."""
        shape = [1] * self._model_view(i, self.params[i]).dim()
        for d, size in zip(self._model_dims(i), (self.S, self.L, self.R), strict=True):
            shape[d] = size
        return shape

    def note_val(self, flats: torch.Tensor, val_acc: np.ndarray) -> None:
        """Update the best weights from kept epochs ``flats`` ``[K, P]`` and their validation
        accuracies ``val_acc`` ``[K, S, L, R]`` (NaN: diverged, never best), in epoch order."""
        for k in range(flats.shape[0]):
            val = torch.from_numpy(np.nan_to_num(val_acc[k], nan=-math.inf))
            better = (val >= self.best_val) & torch.isfinite(val)
            if bool(better.any()):
                self.best_val = torch.where(better, val, self.best_val)
                mask = better.reshape(-1)[self._model_ids]
                self.best_flat = torch.where(mask, flats[k], self.best_flat)

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

    def forward(self, x: torch.Tensor, flat: torch.Tensor | None = None):
        """Logits ``[S, M, n, C]`` for inputs ``x`` ``[S, n, I]`` or ``[n, I]``; and hidden.
        ``flat``: other weights of the stack's layout (e.g. ``best_flat``), else the current."""
        S, M, O = self.S, self.M, self.O
        params = self.params if flat is None else [p[0] for p in self._param_views(flat[None])]
        W1, b1 = params[0], params[1]
        z = torch.matmul(x, W1).add_(b1) if x.dim() == 2 else torch.baddbmm(b1, x, W1)
        n = z.shape[1]
        z = z.view(S, n, M, O).transpose(1, 2)  # [S, M, n, O]
        if not self.mlp:
            return z, None
        h = torch.clamp_min(z, 0.0, out=z.new_empty(z.shape))  # ReLU, contiguous [S, M, n, O]
        return torch.matmul(h, params[2]).add_(params[3]), h

    # -- training ---------------------------------------------------------------------------
    def _buffers_for(self, b: int) -> _Buffers:
        buf = self._buffers.get(b)
        if buf is None:
            buf = self._buffers[b] = _Buffers(self, b)
        return buf

    def train_epoch(self, Xtr: torch.Tensor, ytr: torch.Tensor, perms: list[torch.Tensor],
                    progress: float) -> torch.Tensor:
        """One epoch over the batches of each seed's permutation; mean train loss ``[S, L, R]``.

        Losses of the form f(log p_y) (``depends_on_target_prob``) share one log-softmax and one
        gradient expression ``coef * (p - onehot)`` per step (the CE/EL mixes, whose coef is
        ``alpha + beta p_y``, one ``addcmul`` for all of them); their values are computed once
        at the end of the epoch from the stored log p_y (the schedule is constant within an
        epoch). Other losses are called per step on their slice of the stack.
        """
        S, L, R, M, B = self.S, self.L, self.R, self.M, self.spec.batch_size
        losses, mlp = self.spec.losses, self.mlp
        P = torch.stack(perms)  # [S, n]
        n = P.shape[1]
        Xp = Xtr[P]  # [S, n, I]
        if ytr.shape[:2] == (1, 1):  # every slot on the same labels
            yp = ytr[0, 0][P][:, None]  # [S, 1, n]
        else:
            yp = torch.stack([ytr[min(si, len(ytr) - 1)][:, p] for si, p in enumerate(perms)])
        # per-batch views, made once per epoch: inputs, targets per model, log p_y slots
        sample_dim = 2 if mlp else 1
        xbs = Xp.split(B, 1)
        xbts = Xp.transpose(1, 2).split(B, 2)  # [S, I, b] per batch (backward of layer 1)
        idxs = self._model_targets(yp, sample_dim).unsqueeze(-1).split(B, sample_dim)
        if self._store is None or self._store.shape[2] != n:
            self._store = torch.empty(S, M, n)
        store = self._store
        stores = (store.unsqueeze(-1) if mlp else store.transpose(1, 2).unsqueeze(-1)).split(
            B, sample_dim)
        store_lm = store.view(S, L, R, n)  # each loss's slice [S, R, n]
        # this epoch's order of each weighted loss's per-sample weights: [S, R, n]
        wp = {li: torch.stack([w[si][:, p] for si, p in enumerate(perms)])
              for li, w in self.sample_weights.items()}
        fused = self.fused
        # losses whose coef is a + b p_y at this progress (the CE/EL mixes): one addcmul
        affine = {li: losses[li].affine_coef(progress) for li in fused if li not in wp}
        mix = [li for li, ab in affine.items() if ab is not None]
        # the other losses, one call per slot group: (start, stop, loss, per-batch inputs)
        rest = [(a, z) for a, z in self.groups if a in fused and a not in mix]
        rest_lpy = {a: store_lm[:, a:z].split(B, 3) for a, z in rest}  # [S, Lg, R, b]
        rest_w = {a: torch.stack([wp[li] for li in range(a, z)], 1).split(B, 3)
                  for a, z in rest if a in wp}
        if mix:
            ab = torch.zeros(2, L)
            for li in mix:
                ab[:, li] = torch.tensor(affine[li])
            shape = (1, M, 1, 1) if mlp else (1, 1, M, 1)
            alpha, beta = (v.repeat_interleave(R).view(shape) for v in ab)
        sc = self.scales  # losses with scales (two-scale): R per step, scale gradients
        other = [(a, z, self._group_loss(a, z)) for a, z in self.groups
                 if a not in fused and (sc is None or a not in sc.slots)]
        # a lone slot's loss sees [S, R, b, C] as before; a group's [S, Lg, R, b, C]
        other = [(a, z, loss, slice(a, z) if z - a > 1 else a) for a, z, loss in other]
        lone = {a: slice(None) if z - a > 1 else 0 for a, z, _, _ in other}
        other_targets = {a: self._slot_targets(yp, a, z)[:, lone[a]].split(B, -1)
                         for a, z, _, _ in other}
        other_w = {a: torch.stack([wp[li] for li in range(a, z)], 1)[:, lone[a]].split(B, -1)
                   for a, z, _, _ in other if a in wp}
        loss_sum = torch.zeros(S, L, R)
        params, grads = self.params, self.grads
        if sc is not None:
            scale_v, gscale_v = (t[-1].view(S, L, R, -1) for t in (params, grads))
            dead = self.diverged.view(S, M) if bool(self.diverged.any()) else None
            sc_targets = {a: self._slot_targets(yp, a, z)[:, slice(None) if z - a > 1 else 0]
                          .split(B, -1) for a, z, _, _ in sc.runs}
        W1, b1, gW1, gb1 = params[0], params[1], grads[0], grads[1]
        if mlp:
            W2_3 = params[2].view(S * M, self.O, self.C)
            W2t_3, b2 = W2_3.transpose(1, 2), params[3]
            gW2_3, gb2 = grads[2].view(S * M, self.O, self.C), grads[3]
        threshold_backward = torch.ops.aten.threshold_backward.grad_input
        full = self._buffers_for(B)
        rest_extra = {a: [{"sample_weights": w} for w in rest_w[a]] if a in rest_w else None
                      for a, _z in rest}
        step = self._sgd_step() if self.spec.optimizer == "sgd" else self._adam_step
        for k, xb in enumerate(xbs):
            b = xb.shape[1]
            buf = full if b == B else self._buffers_for(b)
            inv_b = buf.inv_b
            idx = idxs[k]
            logits, g = buf.logits, buf.g
            if sc is not None:  # R of each model (eq. 9) from the weights this step uses
                Rm, sqs = sc.norms(params, dead)
            # forward (mlp: model-major logits [S, M, b, C]; linear: batch-major [S, b, M, C])
            torch.baddbmm(b1, xb, W1, out=buf.z)
            if mlp:
                torch.clamp_min(buf.zt, 0.0, out=buf.h)  # ReLU, [S, M, b, O]
                torch.bmm(buf.h3, W2_3, out=buf.logits3)
                logits.add_(b2)
            # d(batch-mean loss)/d(logits) of every model, into g
            if fused:
                torch._log_softmax(logits, -1, False, out=g)
                logp_y = stores[k]
                torch.gather(g, -1, idx, out=logp_y)
                c = buf.c
                if mix:  # alpha + beta p_y for every CE/EL mix at once
                    torch.addcmul(alpha, beta, torch.exp(logp_y, out=buf.p), out=c)
                for a, _z in rest:
                    extra = rest_extra[a]
                    buf.c_slots[a].copy_(losses[a].coef(rest_lpy[a][k], progress,
                                                        **(extra[k] if extra else {})))
                c.mul_(inv_b)  # 1/b: each model's batch mean
                g.exp_().mul_(c).scatter_add_(-1, idx, torch.neg(c, out=buf.cneg))
            if other:
                lg, gv = self._loss_major(logits), self._loss_major(g)  # [S, L, R, b, C] views
                for a, _z, loss, at in other:
                    extra = {"sample_weights": other_w[a][k]} if a in other_w else {}
                    values, grad = _loss_grad(loss, lg[:, at], other_targets[a][k],
                                              progress, **extra)
                    loss_sum[:, at] += values.mean(-1)
                    gv[:, at] = grad * inv_b
            if sc is not None:  # one call per run of merged scale slots
                lg, gv = self._loss_major(logits), self._loss_major(g)
                for a, _z, loss, at in sc.runs:
                    values, grad = sc.loss_grad(loss, a, at, lg[:, at], sc_targets[a][k],
                                                progress, scale_v, gscale_v, Rm)
                    loss_sum[:, at] += values.mean(-1)
                    gv[:, at] = grad * inv_b
            # backward: parameter gradients of each model's batch-mean loss
            if mlp:
                torch.bmm(buf.h3t, buf.g3, out=gW2_3)
                torch.sum(g, 2, keepdim=True, out=gb2)
                torch.bmm(buf.g3, W2t_3, out=buf.dzm)
                threshold_backward(buf.dzm4, buf.h, 0.0, grad_input=buf.dzt)  # ReLU'
                dz = buf.dz  # [S, b, M*O]
            else:
                dz = buf.dz
            torch.bmm(xbts[k], dz, out=gW1)
            torch.sum(dz, 1, keepdim=True, out=gb1)
            if sc is not None:  # the gradient through R(α) (the loss's r_grad)
                sc.add_r_grads(params, grads, Rm, sqs)
            step()
        n_batches = len(xbs)
        if fused:
            # mean over batches of each batch's mean: sample weight 1 / (its batch size)
            per_sample = torch.full((n,), 1.0 / B)
            if n % B:
                per_sample[n - n % B:] = 1.0 / (n % B)
            logp_y_all = store.view(S, L, R, n)
            for li in fused:
                extra = {"sample_weights": wp[li]} if li in wp else {}
                values = losses[li].value(logp_y_all[:, li], progress, **extra)
                loss_sum[:, li] = values @ per_sample
        return loss_sum / n_batches

    def _group_loss(self, a: int, z: int):
        """One loss object for slots a..z-1 (same method): the slot's own loss for one slot,
        else ``stack_slots`` of the group's losses (e.g. forward with one T per slot)."""
        losses = self.spec.losses[a:z]
        merged = losses[0].stack_slots(losses) if z - a > 1 else None
        return losses[0] if merged is None else merged

    def _slot_targets(self, yp: torch.Tensor, a: int, z: int) -> torch.Tensor:
        """Labels ``[S, z - a, R, n]`` of slots a..z-1 from ``yp`` ``[S, L or 1, n]`` (a
        view: the slots' labels expanded over the lrs)."""
        y = yp[:, a:z] if yp.shape[1] > 1 else yp
        return y[:, :, None, :].expand(self.S, z - a, self.R, yp.shape[2])

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

    def _sgd_step(self) -> Callable[[], None]:
        """One SGD(-with-momentum) step as a closure over the flat buffers: less attribute
        lookup per step (the step is dispatch-bound)."""
        p, grad, buf, neg_lr, m = (self.flat, self.flat_grad, self.flat_state,
                                   self.flat_neg_lr, self._momentum)

        def step() -> None:
            self.n_steps += 1
            if m is not None:
                buf.mul_(m).add_(grad)
                p.addcmul_(buf, neg_lr)
            else:
                p.addcmul_(grad, neg_lr)

        return step

    def _adam_step(self) -> None:
        """One Adam step over the flat buffers (SGD: ``_sgd_step``)."""
        self.n_steps += 1
        p, grad, buf, neg_lr = self.flat, self.flat_grad, self.flat_state, self.flat_neg_lr
        b1, b2 = self.spec.betas
        bc1 = 1 - b1 ** self.n_steps
        bc2_sqrt = math.sqrt(1 - b2 ** self.n_steps)
        v = self.flat_state2
        buf.lerp_(grad, 1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / bc2_sqrt).add_(self.spec.eps)
        p.addcmul_(buf / denom, neg_lr / bc1)

    def prunes_at(self, epoch: int, n_epochs: int) -> list[int]:
        """Slots whose per-sample weights are recomputed at the start of ``epoch``."""
        return [li for li in self.weighted if epoch in self.spec.losses[li].prune_epochs(n_epochs)]

    @torch.no_grad()
    def update_sample_weights(self, Xtr: torch.Tensor, ytr: torch.Tensor, epoch: int,
                              n_epochs: int) -> None:
        """Recompute per-sample weights (truncated Lq pruning) from each model's best-
        validation weights so far (``prune_with="best"``; ``note_val`` must be up to date) or
        its current weights, against the labels it trains on (``ytr`` ``[S or 1, L or 1, n]``)."""
        n = Xtr.shape[0]
        for li in self.weighted:  # the GCE paper starts with every weight at 1
            self.sample_weights.setdefault(li, torch.ones(self.S, self.R, n))
        due = self.prunes_at(epoch, n_epochs)
        if not due:
            return
        by_source: dict[str, list[int]] = {}
        for li in due:
            source = getattr(self.spec.losses[li], "prune_with", "current")
            by_source.setdefault(source if self.best_flat is not None else "current",
                                 []).append(li)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(self.S * self.M * max(self.O, self.C), 1))
        for source, slots in by_source.items():
            flat = self.best_flat if source == "best" else None
            for a in range(0, n, chunk):
                logits, _ = self.forward(Xtr[a:a + chunk], flat)
                b = logits.shape[2]
                lg = logits.view(self.S, self.L, self.R, b, self.C)
                for li in slots:
                    y = ytr[:, min(li, ytr.shape[1] - 1), None, a:a + chunk]  # [S or 1, 1, b]
                    target = y.expand(self.S, self.R, b)
                    w = self.spec.losses[li].sample_weights_from(lg[:, li], target)
                    self.sample_weights[li][:, :, a:a + chunk] = w.to(torch.float32)

    @torch.no_grad()
    def best_probs(self, X: torch.Tensor, slots: Sequence[int]) -> torch.Tensor:
        """Softmax ``[S, len(slots), R, n, C]`` of each model's best-validation weights on
        ``X`` (forward correction's first stage: T-hat from the CE models)."""
        n = X.shape[0]
        out = torch.empty(self.S, len(slots), self.R, n, self.C)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(self.S * self.M * max(self.O, self.C), 1))
        for a in range(0, n, chunk):
            logits, _ = self.forward(X[a:a + chunk], self.best_flat)
            lg = logits.view(self.S, self.L, self.R, -1, self.C)
            out[..., a:a + chunk, :] = torch.softmax(lg[:, list(slots)], -1)
        return out

    # -- divergence -------------------------------------------------------------------------
    def check_divergence(self, train_loss: torch.Tensor) -> torch.Tensor:
        """Flag models with a non-finite loss or parameter, zero and freeze them; new flags."""
        if bool(torch.isfinite(train_loss).all()) and bool(torch.isfinite(self.flat).all()):
            return torch.zeros_like(self.diverged)
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
            keep = (~mask).view(self._model_shape(i))
            for t in [self.params[i], self.state[i], *self.state2[i:i + 1]]:
                v = self._model_view(i, t)
                v.mul_(keep).nan_to_num_(0.0, 0.0, 0.0)
            self._model_view(i, self.neg_lrs[i]).mul_(keep)

    # -- evaluation -------------------------------------------------------------------------
    def _param_views(self, flats: torch.Tensor) -> list[torch.Tensor]:
        """Kept flat buffers ``[K, P]`` as ``[K, *shape]`` views per layer."""
        out, offset = [], 0
        for p in self.params:
            n = p.numel()
            out.append(flats[:, offset:offset + n].view(-1, *p.shape))
            offset += n
        return out

    def eval_epochs_per_pass(self, n: int) -> int:
        """How many kept epochs one evaluation pass over ``n`` samples takes (memory bound)."""
        width = self.S * self.M * max(self.O, self.C)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(width, 1))
        return max(1, EVAL_FLOATS // (min(n, chunk) * width))

    @torch.no_grad()
    def evaluate_kept(self, flats: torch.Tensor, X: torch.Tensor,
                      y: torch.Tensor) -> torch.Tensor:
        """Mean metrics ``[K, S, L, R, n_metrics]`` of K kept weight sets (``flats`` ``[K, P]``,
        epochs) on all of ``X`` against labels ``y`` ``[S or 1, L or 1, n]``: ``evaluate``'s
        chunks and ops with the epochs as a leading batch dimension (same numbers)."""
        K, n = flats.shape[0], X.shape[0]
        views = self._param_views(flats)
        W1, b1, *rest = views
        S, M, O, C = self.S, self.M, self.O, self.C
        sc = self.scales
        if sc is not None:  # each kept epoch's own R and scales (test-time logits)
            R_kept, _ = sc.norms(views)
            scale_kept = views[-1].view(K, S, self.L, self.R, -1)
        width = S * M * max(O, C)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(width, 1))
        total = None
        for a in range(0, n, chunk):
            yc = y[..., a:a + chunk]
            z = torch.matmul(X[a:a + chunk], W1).add_(b1)  # [K, S, b, M*O]
            b = z.shape[2]
            if self.mlp:
                zt = z.view(K, S, b, M, O).transpose(2, 3)
                h = torch.clamp_min(zt, 0.0, out=zt.new_empty(zt.shape))  # [K, S, M, b, O]
                logits = torch.matmul(h, rest[0]).add_(rest[1])  # [K, S, M, b, C]
                if sc is not None:
                    sc.rescale(logits, scale_kept, R_kept, batch_major=False)
                sums = metric_sums(logits, self._model_targets(yc, 2), C, score=self.score)
            else:  # batch-major [K, S, b, M, C]: the contiguous matmul output
                logits = z.view(K, S, b, M, C)
                if sc is not None:
                    sc.rescale(logits, scale_kept, R_kept, batch_major=True)
                sums = metric_sums(logits, self._model_targets(yc, 1), C, sample_dim=2,
                                   score=self.score)
            total = sums if total is None else total + sums
        return metric_means(total, n, C, self.score).view(K, self.S, self.L, self.R, -1)

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean metrics ``[S, L, R, n_metrics]`` on all of ``X`` (chunked full-batch) against
        labels ``y`` ``[S or 1, L or 1, n]``."""
        if self.scales is not None:  # the test-time logits need the scales: the kept path
            return self.evaluate_kept(self.flat[None], X, y)[0]
        n = X.shape[0]
        width = self.S * self.M * max(self.O, self.C)
        chunk = max(1, EVAL_CHUNK_FLOATS // max(width, 1))
        total = None
        for a in range(0, n, chunk):
            yc = y[..., a:a + chunk]
            if self.mlp:  # [S, M, b, C]
                logits, _ = self.forward(X[a:a + chunk])
                sums = metric_sums(logits, self._model_targets(yc, 2), self.C,
                                   score=self.score)
            else:  # linear, batch-major [S, b, M, C]: the contiguous matmul output
                z = torch.matmul(X[a:a + chunk], self.params[0]).add_(self.params[1])
                logits = z.view(self.S, -1, self.M, self.C)
                sums = metric_sums(logits, self._model_targets(yc, 1), self.C, sample_dim=1,
                                   score=self.score)
            total = sums if total is None else total + sums
        return metric_means(total, n, self.C, self.score).view(self.S, self.L, self.R, -1)


def train_stack(spec: StackSpec, X: np.ndarray, y: np.ndarray, n_classes: int,
                split: tuple[np.ndarray, np.ndarray, np.ndarray],
                on_epoch: Callable[[int], None] | None = None,
                reference: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """Train the stack; per-epoch arrays ``[E, S, L, R]`` keyed ``train_loss``, ``diverged``,
    and ``<split>_<metric>`` for split in train/val/test (NaN from a model's divergence on);
    with ``spec.score`` the metrics end with ``score`` (``metric_names``).

    ``y``: the labels of every row ``[N]``, or one label vector per (seed, slot) ``[S, L, N]``
    (label noise: each slot trains, is selected and scored on its own labels).
    ``reference``: slots whose models' training-set softmax at their best validation epoch
    is returned as ``reference_probs`` ``[S, len(reference), R, n_train, C]``."""
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
    if reference or any("best_model" in loss.needs for loss in spec.losses):
        stack.keep_best()
    gens = [order_generator(s, spec.fold) for s in spec.seeds]
    n_train = parts["train"][0].shape[0]
    names = metric_names(n_classes, score=spec.score)
    E = spec.epochs
    shape = (E, stack.S, stack.L, stack.R)
    out = {"train_loss": np.full(shape, np.nan), "diverged": np.zeros(shape, bool)}
    for sp in SPLITS:
        for name in names:
            out[f"{sp}_{name}"] = np.full(shape, np.nan)
    # each epoch's weights are kept and evaluated K epochs at a time (bitwise the same)
    per_pass = min(stack.eval_epochs_per_pass(len(idx)) for idx in split)
    K = max(1, min(E, per_pass, SNAPSHOT_FLOATS // stack.flat.numel()))
    kept: list[torch.Tensor] = []

    def evaluate_kept(last_epoch: int) -> None:
        epochs = list(range(last_epoch + 1 - len(kept), last_epoch + 1))
        flats = torch.stack(kept)
        kept.clear()
        dead = out["diverged"][epochs]
        for sp in SPLITS:
            values = stack.evaluate_kept(flats, *parts[sp]).numpy()
            for k, name in enumerate(names):
                out[f"{sp}_{name}"][epochs] = np.where(dead, np.nan, values[..., k])
        if stack.best_flat is not None:
            stack.note_val(flats, out["val_acc"][epochs])

    with torch.no_grad():
        for epoch in range(E):
            perms = [torch.randperm(n_train, generator=g) for g in gens]
            if kept and stack.best_flat is not None and stack.prunes_at(epoch, E):
                evaluate_kept(epoch - 1)  # pruning reads the best weights so far
            stack.update_sample_weights(*parts["train"], epoch, E)
            train_loss = stack.train_epoch(*parts["train"], perms, epoch / E)
            stack.check_divergence(train_loss)
            dead = stack.diverged.numpy()
            out["diverged"][epoch] = dead
            out["train_loss"][epoch] = np.where(dead, np.nan, train_loss.numpy())
            kept.append(stack.flat.clone())
            if len(kept) == K or epoch == E - 1:
                evaluate_kept(epoch)
            if on_epoch is not None:
                on_epoch(epoch)
        if reference:
            out["reference_probs"] = stack.best_probs(parts["train"][0], reference).numpy()
    return out
