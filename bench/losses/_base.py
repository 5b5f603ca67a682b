"""Base class: input validation at the public call, unchecked fast paths for the engine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from bench.errors import LossbenchError


def check_param(loss_id: str, name: str, value: Any, low: float | None = None,
                high: float | None = None, low_open: bool = False,
                high_open: bool = False) -> float:
    """sklearn-style parameter check: a real number in the given range, returned as float."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    want = f"a float in the range {'(' if low_open or low is None else '['}{lo}, {hi}" \
           f"{')' if high_open or high is None else ']'}"
    if low is not None and high is None:
        want = f"a float {'>' if low_open else '>='} {lo}"
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if not bad:
        v = float(value)
        bad = (not math.isfinite(v)
               or (low is not None and (v < low or (low_open and v == low)))
               or (high is not None and (v > high or (high_open and v == high))))
    if bad:
        raise LossbenchError(
            f"The '{name}' parameter of make_loss('{loss_id}') must be {want}. "
            f"Got {value!r} instead."
        )
    return float(value)


def check_inputs(loss_id: str, logits: Any, target: Any, progress: Any) -> None:
    """Raise LossbenchError for bad shapes, dtypes, non-finite logits, targets or progress."""
    where = f"loss '{loss_id}'"
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        got = logits.dtype if isinstance(logits, Tensor) else type(logits).__name__
        raise LossbenchError(
            f"{where}: logits must be a floating-point tensor [..., C]; got {got}."
        )
    if logits.ndim < 1 or logits.shape[-1] < 2:
        raise LossbenchError(
            f"{where}: logits must have shape [..., C] with C >= 2; got {tuple(logits.shape)}."
        )
    if not isinstance(target, Tensor) or target.dtype != torch.int64:
        got = target.dtype if isinstance(target, Tensor) else type(target).__name__
        raise LossbenchError(f"{where}: target must be an int64 tensor; got {got}.")
    if tuple(target.shape) != tuple(logits.shape[:-1]):
        raise LossbenchError(
            f"{where}: target shape {tuple(target.shape)} must equal logits shape without the "
            f"class dim {tuple(logits.shape[:-1])}."
        )
    n_classes = logits.shape[-1]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise LossbenchError(
            f"{where}: target values must be in [0, {n_classes - 1}]; got min "
            f"{int(target.min())}, max {int(target.max())}."
        )
    if not bool(torch.isfinite(logits).all()):
        n_bad = int((~torch.isfinite(logits)).sum())
        raise LossbenchError(f"{where}: logits contain {n_bad} NaN/inf values.")
    check_progress(loss_id, progress)


def check_progress(loss_id: str, progress: Any) -> None:
    ok = not isinstance(progress, bool) and isinstance(progress, int | float) \
        and 0.0 <= float(progress) <= 1.0
    if not ok:
        raise LossbenchError(
            f"loss '{loss_id}': progress must be a float in [0, 1] (epoch / n_epochs); "
            f"got {progress!r}."
        )


def target_log_prob(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Stable log-softmax and log p_y (no clamping: gradients stay exact for tiny p_y)."""
    logp = torch.log_softmax(logits, dim=-1)
    return logp, logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)


class Loss:
    """A per-sample loss: ``loss(logits, target, progress=0.0)`` -> ``[...]``.

    Public calls validate their inputs (``validate=True``). The engine, which calls losses
    millions of times on tensors it built itself, may call the unchecked ``per_sample`` and
    ``grad_unchecked`` directly (same arguments, no validation).
    Subclasses implement ``per_sample`` and, where a closed form exists, ``grad_unchecked``.

    Trainer hooks: a trainer talks to a loss only through the attributes and methods below
    (never its class or private state), so a loss with state or extra inputs (truncated Lq's
    weights, two-scale's scales, forward's T-hat) plugs into every trainer. The defaults make
    a plain loss: no state, no parameters, no extra inputs. Order in a run: ``bind(model)``
    once after the model is built; ``prepare(ctx)`` once before the first epoch (not again on
    a resumed run: what it sets must live in ``state_dict``); per epoch ``epoch_start``; per
    step ``per_sample(logits, target, progress, **step_inputs(model, batch_index))``;
    evaluation on ``eval_logits(model(x), model)``.
    """

    id: str | None = None
    label: str | None = None
    needs: frozenset[str] = frozenset()
    #: True for losses given by f(log p_y) with ``value`` / ``coef`` (``TargetProbLoss``)
    depends_on_target_prob: bool = False
    #: constant factor on the model's learning rate (ce_gradnorm); 1 for every other loss
    lr_multiplier: float = 1.0

    # -- trainer hooks (defaults: a plain, stateless loss) ------------------------------------
    def bind(self, model: torch.nn.Module) -> None:
        """Called once with the freshly built model (two-scale: scales from R(model))."""

    def prepare(self, ctx: Any) -> None:
        """Called once before training with the trainer's context (``bench.train._context``):
        ``ctx.reference_probs(loss_id)``, ``ctx.train_logits()``, ``ctx.n_train``, ..."""

    def parameters(self) -> list[Tensor]:
        """Trainable loss parameters; the trainer adds them to the model's optimiser."""
        return []

    def stack_slots(self, losses: Sequence[Loss]) -> Loss | None:
        """One loss for several slots of a stack (``losses``: this one and its siblings, the
        same method on other labels), called on ``[S, len(losses), R, b, C]`` logits; None:
        the engine calls each slot's loss (one call per slot per step)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """The loss's state (tensors, floats) for a checkpoint; ``{}`` when it has none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; a stateless loss accepts only ``{}``."""
        if state:
            raise LossbenchError(
                f"loss '{self.id}' has no state; got checkpoint keys {sorted(state)}."
            )

    def step_inputs(self, model: torch.nn.Module, batch_index: Tensor) -> dict[str, Any]:
        """Extra keyword inputs of this step's loss call; ``batch_index`` = the batch's
        positions in the training set (truncated Lq: their weights)."""
        return {}

    def eval_logits(self, logits: Tensor, model: Any) -> Tensor:
        """Logits the metrics see (two-scale rescales them as at test time)."""
        return logits

    def epoch_start(self, epoch: int, n_epochs: int, ctx: Any) -> None:
        """Called at the start of each 0-based epoch (truncated Lq prunes here)."""

    def complement(self, logits: Tensor, target: Tensor) -> Tensor:
        """Per-sample value of a second pass (needs {"complement_pass"}: COT)."""
        raise LossbenchError(f"loss '{self.id}' has no complement pass (it does not need one).")

    def grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                       **extra: Any) -> Tensor | None:
        """d(per-sample loss)/d(logits) in closed form, or None: the engine uses autograd."""
        return None

    def __call__(self, logits: Tensor, target: Tensor, progress: float = 0.0, *,
                 validate: bool = True, **extra: Any) -> Tensor:
        if validate:
            self.check_call(logits, target, progress, extra)
        return self.per_sample(logits, target, progress, **extra)

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   **extra: Any) -> Tensor:
        raise NotImplementedError

    def check_call(self, logits: Tensor, target: Tensor, progress: float,
                 extra: dict[str, Any]) -> None:
        """Check the inputs of a public call; losses with extra inputs check those too."""
        check_inputs(self.id or type(self).__name__, logits, target, progress)
        self.check_extra(logits, target, extra)

    def check_extra(self, logits: Tensor, target: Tensor, extra: dict[str, Any]) -> None:
        """Reject extra keyword inputs this loss does not take (override to accept some)."""
        if extra:
            raise LossbenchError(
                f"loss '{self.id}' takes no extra inputs; got {', '.join(map(repr, extra))}."
            )

    def __repr__(self) -> str:
        return f"make_loss('{self.id}')"


class CallableLoss(Loss):
    """A registered builder's plain callable ``fn(logits, target, progress=0.0)`` made a
    ``Loss`` (``make_loss`` wraps it), so trainers find every hook on every loss."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.needs = frozenset(getattr(fn, "needs", None) or ())

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   **extra: Any) -> Tensor:
        return self.fn(logits, target, progress, **extra)

    def check_extra(self, logits: Tensor, target: Tensor, extra: dict[str, Any]) -> None:
        """The callable checks its own extra inputs."""


class ClosedFormLoss(Loss):
    """A loss with ``grad_logits``: d(per-sample loss)/d(logits), same shape as logits."""

    def grad_logits(self, logits: Tensor, target: Tensor, progress: float = 0.0, *,
                    validate: bool = True, **extra: Any) -> Tensor:
        if validate:
            self.check_call(logits, target, progress, extra)
        return self.grad_unchecked(logits, target, progress, **extra)

    def grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                       **extra: Any) -> Tensor:
        raise NotImplementedError

    def value_and_grad(self, logits: Tensor, target: Tensor, progress: float = 0.0, *,
                       validate: bool = True, **extra: Any) -> tuple[Tensor, Tensor]:
        """``(loss(...), grad_logits(...))`` in one call, sharing work where the loss can."""
        if validate:
            self.check_call(logits, target, progress, extra)
        return self.value_and_grad_unchecked(logits, target, progress, **extra)

    def value_and_grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                                 **extra: Any) -> tuple[Tensor, Tensor]:
        return (self.per_sample(logits, target, progress, **extra),
                self.grad_unchecked(logits, target, progress, **extra))


def grad_from_coef(logp: Tensor, target: Tensor, coef: Tensor) -> Tensor:
    """``coef * (softmax - onehot(target))``: the logit gradient of any loss f(log p_y).

    For L = f(s), s = log p_y, dL/dz = f'(s) (onehot - p); ``coef`` = -f'(s), shape of target.
    One exp and one scatter, no Python loop (used by the engine's hand-written backward).
    """
    c = coef.unsqueeze(-1)
    grad = logp.exp().mul_(c)
    grad.scatter_add_(-1, target.unsqueeze(-1), -c)
    return grad


class TargetProbLoss(ClosedFormLoss):
    """A loss that depends on the logits only through s = log p_y (CE, EL, mixes, focal, Lq...).

    Subclasses give the value ``value(s, progress)`` and ``coef(s, progress)`` = -dL/ds;
    ``grad_logits`` is then ``coef * (p - onehot)`` exactly (the autograd test holds this).
    ``value_and_grad_unchecked`` shares one log-softmax between value and gradient.
    """

    depends_on_target_prob = True

    def affine_coef(self, progress: float) -> tuple[float, float] | None:
        """(a, b) when ``coef(s, progress) = a + b exp(s)`` for every s (CE/EL mixes), so an
        engine can batch all such losses in one expression; None otherwise."""
        return None

    def value(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        raise NotImplementedError

    def coef(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        raise NotImplementedError

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   **extra: Any) -> Tensor:
        _, logp_y = target_log_prob(logits, target)
        return self.value(logp_y, progress, **extra)

    def grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                       **extra: Any) -> Tensor:
        logp, logp_y = target_log_prob(logits, target)
        return grad_from_coef(logp, target, self.coef(logp_y, progress, **extra))

    def value_and_grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                                 **extra: Any) -> tuple[Tensor, Tensor]:
        """Per-sample values and their logit gradients from one log-softmax (engine fast path)."""
        logp, logp_y = target_log_prob(logits, target)
        return (self.value(logp_y, progress, **extra),
                grad_from_coef(logp, target, self.coef(logp_y, progress, **extra)))
