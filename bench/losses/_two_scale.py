"""Two-scale losses (Berlyand, Creese & Jabin 2021, arXiv 2106.02676).

The logits z are normalised by R = product of the layer weight norms (detached), x = z / R.
A sample whose normalised margin dX = x_y - max_{j != y} x_j is below eta (badly or barely
classified) is scored by CE on R1 x; the others by CE on R2 x (R2 = 10 R1 at init, so
well-classified samples contribute little). The test-time logits are R1 x.

Trainer hooks (what a trainer uses): ``bind(model)`` creates the scales from R(model) at
init, ``parameters()`` gives the trainable ones, ``step_inputs`` gives ``scales`` and the
current R, ``eval_logits(logits, model)`` rescales, ``state_dict`` holds the scales.

Stand-alone contract (needs {"scale_params", "weight_norm"}):
  * ``scales = loss.init_scales(weight_norm)`` once per model: a dict of leaf tensors, the
    trainable ones with ``requires_grad=True`` (optimise them with the model's optimiser);
  * ``loss(logits, target, progress, scales=scales, weight_norm=R)`` each step, R the current
    product of weight norms (float, or a tensor broadcastable to target, e.g. [G, 1] for a
    [G, B, C] stack; it is detached); autograd gives gradients w.r.t. logits and scales;
  * ``loss.eval_logits(logits, scales, weight_norm)`` = R1 z / R for evaluation.
Scales are tensors broadcastable to the target shape, like ``weight_norm``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bench.errors import LossbenchError
from bench.losses._base import Loss, check_param
from bench.losses._registry import register_loss


def weight_norm_product(model: torch.nn.Module) -> Tensor:
    """R: product of the Frobenius norms of the model's weight matrices and kernels (every
    parameter named ``weight`` with >= 2 dims: dense, conv, embedding), detached."""
    norms = [p.detach().norm() for name, p in model.named_parameters()
             if name.rsplit(".", 1)[-1] == "weight" and p.dim() >= 2]
    if not norms:
        raise LossbenchError("two-scale loss: the model has no weight matrix to take R from.")
    return torch.stack(norms).prod()


def _as_norm(loss_id: str, weight_norm: Any) -> Tensor:
    if isinstance(weight_norm, Tensor):
        R = weight_norm.detach()
    elif isinstance(weight_norm, int | float) and not isinstance(weight_norm, bool):
        R = torch.tensor(float(weight_norm))
    else:
        raise LossbenchError(
            f"loss '{loss_id}': weight_norm must be a positive float or tensor (product of the "
            f"layer weight norms); got {type(weight_norm).__name__}."
        )
    if not bool(torch.isfinite(R).all()) or not bool((R > 0).all()):
        raise LossbenchError(f"loss '{loss_id}': weight_norm must be finite and > 0.")
    return R


class TwoScaleLoss(Loss):
    """CE on R1 z/R where the normalised margin is < eta, on R2 z/R elsewhere.

    ``variant``: "two_scale" (R1, R2 trainable), "fixed" (R1, R2 constants from init_scales),
    "sep" (R1 = R, i.e. raw logits for small margins, and one trainable separation scale Rs
    used for the well-separated samples).
    """

    needs = frozenset({"scale_params", "weight_norm"})

    def __init__(self, variant: str, eta: float, ratio: float) -> None:
        self.variant, self.eta, self.ratio = variant, eta, ratio
        self._bound: dict[str, Tensor] = {}  # the scales of the model given to ``bind``

    # -- trainer hooks ------------------------------------------------------------------------
    def bind(self, model: torch.nn.Module) -> None:
        """Scales for this model, from its R at init (on its device)."""
        self._bound = self.init_scales(weight_norm_product(model))

    def parameters(self) -> list[Tensor]:
        return [t for t in self._bound.values() if t.requires_grad]

    def step_inputs(self, model: torch.nn.Module, batch_index: Tensor) -> dict[str, Any]:
        return {"scales": self._bound, "weight_norm": weight_norm_product(model)}

    def state_dict(self) -> dict[str, Any]:
        return {"scales": {k: v.detach().clone() for k, v in self._bound.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy into the bound scales (in place: the optimiser holds them)."""
        scales = state.get("scales", {})
        if set(state) - {"scales"} or set(scales) != set(self._bound):
            raise LossbenchError(
                f"loss '{self.id}': checkpoint scales {sorted(scales)} do not match the bound "
                f"scales {sorted(self._bound)} (bind(model) first)."
            )
        with torch.no_grad():
            for k, v in scales.items():
                self._bound[k].copy_(v)

    def init_scales(self, weight_norm: float | Tensor) -> dict[str, Tensor]:
        """Initial scales for a model whose weight-norm product is ``weight_norm``."""
        R = _as_norm(self.id or "two_scale", weight_norm).to(torch.get_default_dtype())
        if self.variant == "sep":
            return {"Rs": (self.ratio * R).clone().requires_grad_(True)}
        trainable = self.variant == "two_scale"
        return {"R1": R.clone().requires_grad_(trainable),
                "R2": (self.ratio * R).clone().requires_grad_(trainable)}

    def _scales(self, scales: dict[str, Tensor], R: Tensor) -> tuple[Tensor, Tensor]:
        if self.variant == "sep":
            return R, scales["Rs"]
        return scales["R1"], scales["R2"]

    def check_extra(self, logits: Tensor, target: Tensor, extra: dict[str, Any]) -> None:
        unknown = set(extra) - {"scales", "weight_norm"}
        if unknown or "scales" not in extra or "weight_norm" not in extra:
            raise LossbenchError(
                f"loss '{self.id}' needs scales=loss.init_scales(R) and weight_norm=R "
                f"(product of layer weight norms); got extra inputs {sorted(extra)}."
            )
        want = {"Rs"} if self.variant == "sep" else {"R1", "R2"}
        scales = extra["scales"]
        if not isinstance(scales, dict) or set(scales) != want or not all(
                isinstance(v, Tensor) for v in scales.values()):
            raise LossbenchError(
                f"loss '{self.id}': scales must be a dict with tensor keys {sorted(want)} (from "
                f"loss.init_scales); got {scales!r}."
            )
        R = _as_norm(self.id or "two_scale", extra["weight_norm"])
        for name, t in [("weight_norm", R), *scales.items()]:
            try:
                ok = torch.broadcast_shapes(t.shape, target.shape) == target.shape
            except RuntimeError:
                ok = False
            if not ok:
                raise LossbenchError(
                    f"loss '{self.id}': {name} shape {tuple(t.shape)} must broadcast to the "
                    f"target shape {tuple(target.shape)} (e.g. [G, 1] for G stacked models)."
                )

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   scales: dict[str, Tensor] | None = None, weight_norm: Any = None,
                   **extra: Any) -> Tensor:
        if scales is None or weight_norm is None:
            raise LossbenchError(
                f"loss '{self.id}' needs scales=loss.init_scales(R) and weight_norm=R."
            )
        R = _as_norm(self.id or "two_scale", weight_norm).to(logits.dtype)
        x = logits / R.unsqueeze(-1)
        s1, s2 = self._scales(scales, R)
        with torch.no_grad():
            x_y = x.gather(-1, target.unsqueeze(-1))
            others = x.scatter(-1, target.unsqueeze(-1), float("-inf"))
            small = (x_y.squeeze(-1) - others.amax(-1)) < self.eta
        scale = torch.where(small, s1.to(logits.dtype), s2.to(logits.dtype))
        logp = torch.log_softmax(x * scale.unsqueeze(-1), dim=-1)
        return -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)

    def eval_logits(self, logits: Tensor, model: Any,
                    weight_norm: float | Tensor | None = None) -> Tensor:
        """Test-time logits R1 z / R (for ``two_scale_sep``, R1 = R: the raw logits).

        Trainer hook ``eval_logits(logits, model)``: the bound scales and R(model). The
        stand-alone form ``eval_logits(logits, scales, weight_norm)`` takes them explicitly.
        """
        if weight_norm is None:
            scales, weight_norm = self._bound, weight_norm_product(model)
        else:
            scales = model
        R = _as_norm(self.id or "two_scale", weight_norm).to(logits.dtype)
        s1, _ = self._scales(scales, R)
        return logits * (s1.to(logits.dtype) / R).unsqueeze(-1)


def _check(loss_id: str, eta: float, ratio: float) -> tuple[float, float]:
    return (check_param(loss_id, "eta", eta),
            check_param(loss_id, "ratio", ratio, low=0.0, low_open=True))


@register_loss("two_scale", label="Two-scale")
def two_scale(eta: float = 0.01, ratio: float = 10.0) -> TwoScaleLoss:
    """Two-scale loss with trainable R1, R2 (init R1 = R, R2 = ratio R; eta = 0.01)."""
    return TwoScaleLoss("two_scale", *_check("two_scale", eta, ratio))


@register_loss("two_scale_fixed", label="Two-scale (fixed)")
def two_scale_fixed(eta: float = 0.01, ratio: float = 10.0) -> TwoScaleLoss:
    """Two-scale loss with R1, R2 fixed at their initial values (R and ratio R at init)."""
    return TwoScaleLoss("fixed", *_check("two_scale_fixed", eta, ratio))


@register_loss("two_scale_sep", label="Two-scale (sep)")
def two_scale_sep(eta: float = 0.01, ratio: float = 10.0) -> TwoScaleLoss:
    """Two-scale loss with R fixed (small-margin samples see the raw logits) and one
    trainable separation scale Rs (init ratio R) for the well-separated samples."""
    return TwoScaleLoss("sep", *_check("two_scale_sep", eta, ratio))
