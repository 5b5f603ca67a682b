"""Two-scale losses (Berlyand, Creese & Jabin 2021, arXiv 2106.02676).

The logits z are normalised by R = product of the layer weight norms (detached), x = z / R.
A sample whose normalised margin dX = x_y - max_{j != y} x_j is below eta (badly or barely
classified) is scored by CE on R1 x; the others by CE on R2 x (R2 = 10 R1 at init, so
well-classified samples contribute little). The test-time logits are R1 x.

Engine contract (needs {"scale_params", "weight_norm"}):
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

    def eval_logits(self, logits: Tensor, scales: dict[str, Tensor],
                    weight_norm: float | Tensor) -> Tensor:
        """Test-time logits R1 z / R (for ``two_scale_sep``, R1 = R: the raw logits)."""
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
