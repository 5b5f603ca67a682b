"""Noise-robust losses of the GCE paper (Zhang & Sabuncu, NeurIPS 2018) and forward correction.

MAE, Lq (``gce``) and truncated Lq (``trunc_gce``) depend on the logits through p_y only; their
gradients are ``coef * (p - onehot)`` with coef = 2 p_y (MAE) and p_y^q (Lq: the paper's
"p_y^q times the CE gradient"). No probability is clamped: several public GCE implementations
clamp p to [1e-7, 1], which zeroes the gradient of confidently wrong samples; here p_y^q is
computed as exp(q log p_y) from a stable log-softmax.

Forward correction (Patrini et al., CVPR 2017): -log (T^T p)_y, with T[i, j] = P(noisy j |
clean i) row-stochastic, computed as -logsumexp_i(log p_i + log T[i, y]).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.errors import LossbenchError
from bench.losses._base import (
    ClosedFormLoss,
    TargetProbLoss,
    check_inputs,
    check_param,
    target_log_prob,
)
from bench.losses._registry import register_loss


class MAELoss(TargetProbLoss):
    """Mean absolute error between p and onehot(y): sum_j |e_j - p_j| = 2 - 2 p_y."""

    def value(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        return -2.0 * torch.expm1(logp_y)

    def coef(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        return logp_y.exp().mul_(2.0)


@register_loss("mae", label="MAE")
def mae() -> MAELoss:
    """MAE = 2 - 2 p_y (GCE paper, after Ghosh et al. 2017): robust to symmetric label noise."""
    return MAELoss()


class LqLoss(TargetProbLoss):
    """Lq = (1 - p_y^q) / q; q -> 0 gives CE, q = 1 gives 1 - p_y = EL = MAE / 2."""

    def __init__(self, q: float) -> None:
        self.q = q

    def value(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        return torch.expm1(logp_y * self.q) / -self.q

    def coef(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        return logp_y.mul(self.q).exp_()


@register_loss("gce", label="GCE")
def gce(q: float = 0.7) -> LqLoss:
    """Generalized cross-entropy Lq with the GCE paper's q = 0.7."""
    return LqLoss(check_param("gce", "q", q, low=0.0, high=1.0, low_open=True))


class TruncatedLqLoss(LqLoss):
    """Truncated Lq: w Lq(p_y) + (1 - w) Lq(k), w = per-training-sample weights in [0, 1].

    The GCE paper (Sec. 3.2, 4.2) trains on the full data first, then every ``prune_every``
    epochs recomputes w for the whole training set (1 where p_y > k, else 0: the alternating
    convex search, w_i = 1 iff Lq(p_y) < Lq(k)) "using the model at the best validation
    epoch so far, to prevent overfitting" (``prune_with="best"``, needs {"best_model"});
    ``prune_with="current"`` prunes with the model being trained (an earlier reading, kept as
    an option). ``prune_start`` / ``prune_every`` are fractions of training (< 1) or epoch
    counts (whole numbers >= 1): the paper's CIFAR-10 schedule (full data for 40 of 120
    epochs, then every 10) is 1/3 and 1/12 by default, i.e. epochs 17, 21, 25, ... of
    UCI's 50.

    A per-model trainer leaves the weights to the hooks: the loss keeps its model's weights
    (``prepare`` / ``epoch_start``), gives the batch's weights in ``step_inputs`` and
    checkpoints them in ``state_dict``; the stacked engine, which trains many models with one
    loss object, keeps the weights (and each model's best-validation weights) itself.
    """

    def __init__(self, q: float, k: float, prune_start: float, prune_every: float,
                 prune_with: str = "best") -> None:
        super().__init__(q)
        self.k, self.prune_start, self.prune_every = k, prune_start, prune_every
        self.prune_with = prune_with
        self.needs = frozenset({"sample_weights", "best_model"} if prune_with == "best"
                               else {"sample_weights"})
        self.log_k = math.log(k)
        self.lq_k = (1.0 - k**q) / q
        self._weights: Tensor | None = None  # [n_train] of the one model a trainer binds

    # -- trainer hooks: the loss keeps its model's weights -----------------------------------
    def prepare(self, ctx: Any) -> None:
        """Every weight 1 before the first pruning (the GCE paper's start)."""
        self._weights = torch.ones(ctx.n_train, device=ctx.device)

    def epoch_start(self, epoch: int, n_epochs: int, ctx: Any) -> None:
        if epoch in self.prune_epochs(n_epochs):
            logits = ctx.best_train_logits() if self.prune_with == "best" else ctx.train_logits()
            self._weights = self.sample_weights_from(logits, ctx.train_targets).float()

    def step_inputs(self, model: torch.nn.Module, batch_index: Tensor) -> dict[str, Any]:
        if self._weights is None:
            return {}
        return {"sample_weights": self._weights[batch_index.to(self._weights.device)]}

    def state_dict(self) -> dict[str, Any]:
        return {} if self._weights is None else {"sample_weights": self._weights.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"sample_weights"}
        if unknown:
            raise LossbenchError(f"loss '{self.id}': unknown checkpoint keys {sorted(unknown)}.")
        w = state.get("sample_weights")
        self._weights = None if w is None else w.clone()

    def prune_epochs(self, n_epochs: int) -> list[int]:
        """0-based epochs at whose start the weights are recomputed: start + j every, each
        rounded to an epoch (fractions are of ``n_epochs``)."""
        def epochs(x: float) -> float:
            return x if x >= 1 else n_epochs * x

        start, every = epochs(self.prune_start), epochs(self.prune_every)
        out: list[int] = []
        j = 0
        while True:
            e = math.floor(start + j * every + 0.5 + 1e-9)
            if e >= n_epochs:
                return out
            if not out or e > out[-1]:
                out.append(e)
            j += 1

    def sample_weights_from(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weights 1.0 where p_y > k, else 0.0 (shape of target, dtype of logits)."""
        check_inputs(self.id or "trunc_gce", logits, target, 0.0)
        with torch.no_grad():
            _, logp_y = target_log_prob(logits, target)
            return (logp_y > self.log_k).to(logits.dtype)

    def check_extra(self, logits: Tensor, target: Tensor, extra: dict[str, Any]) -> None:
        unknown = set(extra) - {"sample_weights"}
        if unknown:
            raise LossbenchError(
                f"loss '{self.id}' takes only the extra input 'sample_weights'; got "
                f"{', '.join(sorted(map(repr, unknown)))}."
            )
        w = extra.get("sample_weights")
        if w is None:
            return
        if not isinstance(w, Tensor) or not w.is_floating_point():
            raise LossbenchError(
                f"loss '{self.id}': sample_weights must be a float tensor; got "
                f"{w.dtype if isinstance(w, Tensor) else type(w).__name__}."
            )
        try:
            shape = torch.broadcast_shapes(w.shape, target.shape)
        except RuntimeError:
            shape = None
        if shape != target.shape:
            raise LossbenchError(
                f"loss '{self.id}': sample_weights shape {tuple(w.shape)} must broadcast to the "
                f"target shape {tuple(target.shape)}."
            )
        if w.numel() and not bool(((w >= 0) & (w <= 1)).all()):
            raise LossbenchError(f"loss '{self.id}': sample_weights must lie in [0, 1].")

    def value(self, logp_y: Tensor, progress: float, sample_weights: Tensor | None = None,
              **extra: Any) -> Tensor:
        lq = super().value(logp_y, progress)
        if sample_weights is None:
            return lq
        return (lq - self.lq_k) * sample_weights + self.lq_k

    def coef(self, logp_y: Tensor, progress: float, sample_weights: Tensor | None = None,
             **extra: Any) -> Tensor:
        c = super().coef(logp_y, progress)
        return c if sample_weights is None else c.mul_(sample_weights)


PRUNE_WITH = ("best", "current")


def _epochs_or_fraction(name: str, value: float, *, zero_ok: bool) -> float:
    """A fraction of training in [0, 1) (or (0, 1)), or a whole number of epochs >= 1."""
    value = check_param("trunc_gce", name, value, low=0.0, low_open=not zero_ok)
    if value >= 1 and value != int(value):
        raise LossbenchError(f"loss 'trunc_gce': {name} must be a fraction of training below 1 "
                             f"or a whole number of epochs; got {value!r}")
    return value


@register_loss("trunc_gce", label="Truncated GCE")
def trunc_gce(q: float = 0.7, k: float = 0.5, prune_start: float = 1 / 3,
              prune_every: float = 1 / 12, prune_with: str = "best") -> TruncatedLqLoss:
    """Truncated Lq (q = 0.7, k = 0.5). Pruning from ``prune_start`` every ``prune_every``
    (fractions of training, or epochs; defaults = epoch 40 every 10 of the GCE paper's 120)
    with the best-validation model so far (``prune_with="best"``, the paper) or the current
    one (``"current"``)."""
    if prune_with not in PRUNE_WITH:
        raise LossbenchError(f"loss 'trunc_gce': prune_with must be one of "
                             f"{', '.join(PRUNE_WITH)}; got {prune_with!r}")
    return TruncatedLqLoss(
        check_param("trunc_gce", "q", q, low=0.0, high=1.0, low_open=True),
        check_param("trunc_gce", "k", k, low=0.0, high=1.0, low_open=True, high_open=True),
        _epochs_or_fraction("prune_start", prune_start, zero_ok=True),
        _epochs_or_fraction("prune_every", prune_every, zero_ok=False),
        prune_with,
    )


def _as_matrix(name: str, T: Any) -> Tensor:
    try:
        M = torch.as_tensor(np.asarray(T, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise LossbenchError(f"forward: {name} must be a C x C float matrix; got {T!r}.") from err
    if M.ndim < 2 or M.shape[-1] != M.shape[-2] or M.shape[-1] < 2:
        raise LossbenchError(
            f"forward: {name} must be a square C x C matrix with C >= 2 (or a stack [..., C, C] "
            f"of them); got shape {tuple(M.shape)}."
        )
    return M


def _check_transition(T: Any) -> Tensor:
    M = _as_matrix("T", T)
    if not bool(torch.isfinite(M).all()) or bool((M < 0).any()):
        raise LossbenchError("forward: T must have finite, non-negative entries.")
    rows = M.sum(-1)
    if not bool(torch.allclose(rows, torch.ones_like(rows), atol=1e-6)):
        raise LossbenchError(
            f"forward: T must be row-stochastic (rows sum to 1); got row sums "
            f"{[round(float(r), 6) for r in rows.reshape(-1)]}."
        )
    if bool((M.amax(-2) <= 0).any()):
        raise LossbenchError("forward: every column of T needs a positive entry (else the "
                             "loss is infinite for that noisy label).")
    return M


def estimate_transition_matrix(probs: Any, percentile: float = 97.0) -> Tensor:
    """T-hat by Patrini et al.'s anchor points: for each class i, the training sample whose
    predicted p_i is the largest below the ``percentile``-th percentile of p_i (robust to
    outliers; ``percentile=100`` takes the argmax), and T-hat[i] = its predicted p.

    ``probs`` [n, C]: softmax outputs of a model trained with the noisy labels. Unlike the
    authors' code, the thresholding does not modify ``probs`` in place for later classes.
    Rows are renormalised to sum to 1 (float error only).
    """
    P = np.asarray(probs.detach().cpu().numpy() if isinstance(probs, Tensor) else probs,
                   dtype=np.float64)
    if P.ndim != 2 or P.shape[1] < 2 or P.shape[0] < 1:
        raise LossbenchError(
            f"estimate_transition_matrix: probs must be [n, C] with C >= 2; got {P.shape}."
        )
    if not np.isfinite(P).all() or (P < 0).any():
        raise LossbenchError("estimate_transition_matrix: probs must be finite and >= 0.")
    check_param("forward", "percentile", percentile, low=0.0, high=100.0)
    C = P.shape[1]
    T = np.empty((C, C))
    for i in range(C):  # C iterations, not samples
        col = P[:, i]
        if percentile >= 100.0:
            best = int(np.argmax(col))
        else:
            thresh = np.percentile(col, percentile, method="higher")
            robust = np.where(col >= thresh, 0.0, col)
            best = int(np.argmax(robust)) if robust.max() > 0 else int(np.argmax(col))
        T[i] = P[best]
    T /= T.sum(1, keepdims=True)
    return torch.from_numpy(T)


class ForwardLoss(ClosedFormLoss):
    """Forward-corrected CE -log (T^T p)_y; gradient p - r with r = posterior over clean labels.

    T is one C x C matrix, or a stack ``[..., C, C]`` whose leading axes match the leading axes
    of the logits ``[..., b, C]`` (broadcast): the stacked engine trains every seed of a
    noise level with that seed's estimate in one call.

    With ``T`` given the loss is plain. Without it, needs {"transition_matrix"}: ``prepare``
    asks the trainer for the training-set softmax of a CE model trained under the same spec,
    and sets ``estimate_transition_matrix(probs)`` (``set_transition`` does the same by hand);
    calling the loss before a matrix is set raises LossbenchError.
    """

    def __init__(self, T: Any = None) -> None:
        self.needs = frozenset({"transition_matrix"}) if T is None else frozenset()
        self._logT_t: Tensor | None = None  # log T transposed: row y = log T[:, y]
        self._cache: dict[tuple, Tensor] = {}
        if T is not None:
            self.set_transition(T)

    # -- trainer hooks ------------------------------------------------------------------------
    def prepare(self, ctx: Any) -> None:
        """Patrini et al.'s first stage (Sec. 4, "estimator"): without a given T, train CE under
        the same spec, estimate T-hat from its training-set softmax, then use it."""
        if self._logT_t is None:
            self.set_transition(estimate_transition_matrix(ctx.reference_probs("ce")))

    def state_dict(self) -> dict[str, Any]:
        T = self.transition
        return {} if T is None else {"transition": T}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"transition"}
        if unknown:
            raise LossbenchError(f"loss 'forward': unknown checkpoint keys {sorted(unknown)}.")
        if "transition" in state:
            self.set_transition(state["transition"])

    @property
    def transition(self) -> Tensor | None:
        """The transition matrix in use (float64), or None before ``set_transition``."""
        return None if self._logT_t is None else self._logT_t.transpose(-1, -2).exp()

    def stack_slots(self, losses) -> ForwardLoss | None:
        """One forward loss over slots with their own T (noise levels, and per seed for
        T-hat): T stacked as ``[S or 1, L, 1, C, C]`` against logits ``[S, L, R, b, C]``."""
        Ts = [loss.transition for loss in losses]
        if any(T is None for T in Ts) or any(T.dim() not in (2, 4) for T in Ts):
            return None
        S = max(T.shape[0] if T.dim() == 4 else 1 for T in Ts)
        C = Ts[0].shape[-1]
        rows = [(T.reshape(-1, 1, C, C) if T.dim() == 4 else T[None, None]).expand(S, 1, C, C)
                for T in Ts]
        return ForwardLoss(torch.cat(rows, 1).unsqueeze(2))

    def set_transition(self, T: Any) -> None:
        """Set the row-stochastic C x C matrix T[i, j] = P(noisy label j | clean label i)
        (or a stack of them, ``[..., C, C]``)."""
        M = _check_transition(T)
        self._logT_t = torch.log(M).transpose(-1, -2).contiguous()  # log 0 = -inf: exact
        self._cache = {}

    def _columns(self, logits: Tensor, target: Tensor) -> Tensor:
        if self._logT_t is None:
            raise LossbenchError(
                "loss 'forward': no transition matrix; call loss.set_transition(T) (e.g. with "
                "estimate_transition_matrix(probs)) or make_loss('forward', T=...) first."
            )
        key = (logits.dtype, logits.device)
        logT_t = self._cache.get(key)
        if logT_t is None:
            logT_t = self._cache[key] = self._logT_t.to(dtype=logits.dtype, device=logits.device)
        if logT_t.dim() == 2:
            return logT_t[target]  # [..., C]: log T[i, y] for each i
        C = logT_t.shape[-1]
        lead = target.shape[:-1]  # a stack of matrices: one per leading index of the logits
        rows = logT_t.expand(*lead, C, C)
        return torch.gather(rows, -2, target.unsqueeze(-1).expand(*target.shape, C))

    def check_extra(self, logits: Tensor, target: Tensor, extra: dict[str, Any]) -> None:
        super().check_extra(logits, target, extra)
        if self._logT_t is not None and self._logT_t.shape[-1] != logits.shape[-1]:
            C = self._logT_t.shape[-1]
            raise LossbenchError(
                f"loss 'forward': T is {C} x {C} but logits have C = {logits.shape[-1]} classes."
            )
        if self._logT_t is not None and self._logT_t.dim() > 2:
            try:
                torch.broadcast_shapes(self._logT_t.shape[:-2], logits.shape[:-2])
            except RuntimeError:
                raise LossbenchError(
                    f"loss 'forward': a stack of T {tuple(self._logT_t.shape)} needs leading "
                    f"axes that broadcast to the logits' {tuple(logits.shape[:-2])}."
                ) from None

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   **extra: Any) -> Tensor:
        cols = self._columns(logits, target)
        return -torch.logsumexp(torch.log_softmax(logits, -1) + cols, dim=-1)

    def grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                       **extra: Any) -> Tensor:
        cols = self._columns(logits, target)
        logp = torch.log_softmax(logits, -1)
        return logp.exp() - torch.softmax(logp + cols, dim=-1)

    def value_and_grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                                 **extra: Any) -> tuple[Tensor, Tensor]:
        cols = self._columns(logits, target)
        logp = torch.log_softmax(logits, -1)
        joint = logp + cols
        lse = torch.logsumexp(joint, dim=-1)
        return -lse, logp.exp() - (joint - lse.unsqueeze(-1)).exp()


@register_loss("forward", label="Forward")
def forward(T: Any = None) -> ForwardLoss:
    """Forward correction with a given row-stochastic T, or T-hat set later (needs
    {"transition_matrix"}; see ``estimate_transition_matrix``)."""
    return ForwardLoss(T)
