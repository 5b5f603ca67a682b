"""Two-scale losses (Berlyand, Creese & Jabin 2021, arXiv 2106.02676), as the paper defines them.

Notation (Sec. 2.2): z = X^{M-1}(α, s) the logits; R = R(α) the size of the parameters, eq. 9,
the product over the layers of the Euclidean norm of all parameters defining the layer;
X̂ = z / R the normalised logits (eq. 8: equal to X(α̂) for a bias-free net with a degree-one
homogeneous activation, ReLU); δX = z_y - max_{i != y} z_i the classification confidence
(Sec. 2.2). CE on scale c is -log softmax(c X̂)_y, eq. 10 with R replaced by c.

* ``two_scale`` (eq. 13, trained by eq. 14): CE on R1 X̂ where δX < η, on R2 X̂ where δX >= η;
  R1, R2 trainable, initialised R1 = R(α⁰), R2 = 10 R1 (Sec. 3.2).
* ``two_scale_fixed`` (eq. 13 trained by eq. 16): the same with R1 = R0, R2 = 10 R0 constants,
  R0 = R(α⁰) (Sec. 3.4).
* ``two_scale_sep`` (eq. 17, trained by eq. 18): CE on R X̂ = z (the traditional scale, which
  "evolves via gradient descent as normal", Sec. 3.5) where δX < η, on R_s R X̂ = R_s z
  where δX >= η; R_s a trainable ratio, initialised 10. Eq. 17's "R is fixed" is read as "R is
  not a separate loss parameter": Sec. 3.5 says R evolves with α.
* ``one_scale``: the paper's baseline, "we simply replace R2 by R1 in (13)" (Sec. 3.2): CE on
  R1 X̂ for every sample, R1 trainable, initialised R(α⁰).

The split uses the raw margin δX (eq. 13; ``margin="raw"``, default): on MNIST η = 10 is
"indistinguishable from" and η = 100 equal to the traditional loss (Sec. 3.3), which only
the raw margin makes true. ``margin="normalised"`` compares δX̂ = δX / R with η instead; it is
not the paper's rule (kept to compare with earlier versions of this code).

Test-time probabilities are softmax(R1 X̂) ("We choose the scale as R_1", Sec. 3.2) for
``two_scale``, ``two_scale_fixed`` and ``one_scale``, softmax(z) (the scale R) for
``two_scale_sep``: ``eval_logits``.

Gradients: eq. 14 differentiates L((α, R1, R2), s) in α through X̂(α) = X(α̂), so the gradient
flows through R(α) too (``r_grad=True``, default): for a bias-free ReLU net the loss then
depends on each layer's weights only through their direction. ``r_grad=False`` treats R as a
constant within each step.

Layers for R (eq. 9): every module whose own parameters include a matrix or kernel (``dim >=
2``: ``nn.Linear``, ``nn.Conv*``, ``nn.Embedding``); α^i = all of that module's own parameters
(weight and bias, ``r_biases=True``, default: "all parameters defining the linear layer"), or
its matrices only (``r_biases=False``). Normalisation layers (BatchNorm, LayerNorm: 1-D
parameters) are not layers of eq. 1 and the paper's nets (two fully connected layers for
MNIST, LeNet-5 for CIFAR, Secs. 3.2-3.3) have none, so they do not enter R.

Trainer hooks: ``bind(model)`` creates the scales from R(α⁰); ``parameters()`` the trainable
ones; ``step_inputs`` gives ``scales`` and the current R(model); ``eval_logits(logits,
model)``; ``state_dict`` holds the scales.

Stand-alone contract (needs {"scale_params", "weight_norm"}):
  * ``scales = loss.init_scales(R0)``: a dict of leaf tensors shaped like R0, the trainable
    ones with ``requires_grad=True`` (optimise them with the model's optimiser);
  * ``loss(logits, target, progress, scales=scales, weight_norm=R)`` each step, R the current
    eq. 9 size (float, or a tensor broadcastable to target, e.g. [G, 1] for a [G, B, C]
    stack; if it requires grad, the gradient flows through it);
  * ``loss.eval_logits(logits, scales, R)`` the test-time logits;
  * ``loss.closed_form_grads(logits, target, scales=..., weight_norm=R)``: per-sample
    derivatives w.r.t. the logits, each trainable scale and R (what an engine without
    autograd needs; eq. 15 is the one for R2); ``value_and_grads`` gives the values too;
  * ``r_biases`` (R counts biases) and ``r_grad`` (the gradient w.r.t. R goes on to the
    weights, as ``step_inputs`` passes R with its graph): how an engine computes R and uses
    dL/dR (bench/train/_scales.py); ``stack_slots`` merges an η sweep into one call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bench.errors import LossbenchError
from bench.losses._base import Loss, check_param
from bench.losses._registry import register_loss

MARGINS = ("raw", "normalised")
RATIO = 10.0  # R2 = 10 R1 at init (Sec. 3.2, 3.4); R_s = 10 (the same separation, Sec. 3.5)


# -- R, eq. 9 -------------------------------------------------------------------------------------
def layer_parameters(model: torch.nn.Module, biases: bool = True) -> list[list[Tensor]]:
    """α^i of eq. 9 per layer: the own parameters of each module holding a matrix or kernel
    (all of them with ``biases``, else the ``dim >= 2`` ones), in module order."""
    layers = []
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if any(p.dim() >= 2 for p in own):
            layers.append([p for p in own if biases or p.dim() >= 2])
    return layers


def parameter_scale(model: torch.nn.Module, biases: bool = True) -> Tensor:
    """R(α), eq. 9: product over layers of the Euclidean norm of each layer's parameters
    (with the graph: differentiable in the parameters)."""
    layers = layer_parameters(model, biases)
    if not layers:
        raise LossbenchError("two-scale loss: the model has no layer with a weight matrix or "
                             "kernel to take R (eq. 9) from.")
    norms = [torch.cat([p.reshape(-1) for p in params]).norm() for params in layers]
    return torch.stack(norms).prod()


def _as_scale(loss_id: str, weight_norm: Any, check: bool = True) -> Tensor:
    """R as a tensor (the graph kept when it has one); checked finite and > 0 unless
    ``check=False`` (the unchecked engine path: a model may go NaN mid-epoch, and the trainer,
    not the loss, reports the divergence)."""
    if isinstance(weight_norm, Tensor):
        R = weight_norm
    elif isinstance(weight_norm, int | float) and not isinstance(weight_norm, bool):
        R = torch.tensor(float(weight_norm))
    else:
        raise LossbenchError(
            f"loss '{loss_id}': weight_norm must be a positive float or tensor (R, eq. 9: "
            f"product of the layer parameter norms); got {type(weight_norm).__name__}."
        )
    if check and (not bool(torch.isfinite(R).all()) or not bool((R > 0).all())):
        raise LossbenchError(f"loss '{loss_id}': weight_norm must be finite and > 0.")
    return R


# -- the variants (registry: variant name -> its scales) ------------------------------------------
Scales = dict[str, Tensor]


@dataclass(frozen=True)
class Variant:
    """How a variant makes its scales and which scale c each branch of eq. 13 / 17 uses.

    ``init(R0, ratio)`` -> {name: (value, trainable)}; ``low(scales, R)`` the c of the samples
    with δX < η (and of test time), ``high`` the one for δX >= η (None: one scale for all);
    ``d_low`` / ``d_high``: the partial derivatives of that c w.r.t. the trainable scales and
    ``"R"`` (for ``closed_form_grads``). ``relative``: c is a multiple of R (``sep``), so c / R
    is taken as ``low(scales, 1)``: R cancels exactly, not up to rounding (which autograd would
    pass on to the weights as noise through R(α), and Adam would amplify on weights without
    any other gradient).
    """

    init: Callable[[Tensor, float], dict[str, tuple[Tensor, bool]]]
    low: Callable[[Scales, Tensor], Tensor]
    high: Callable[[Scales, Tensor], Tensor] | None
    d_low: Callable[[Scales, Tensor], dict[str, Tensor | float]]
    d_high: Callable[[Scales, Tensor], dict[str, Tensor | float]]
    relative: bool = False


def _none(s: Scales, R: Tensor) -> dict[str, Tensor | float]:
    return {}


VARIANTS: dict[str, Variant] = {
    "two_scale": Variant(  # eq. 13 + 14
        init=lambda R0, ratio: {"R1": (R0, True), "R2": (ratio * R0, True)},
        low=lambda s, R: s["R1"], high=lambda s, R: s["R2"],
        d_low=lambda s, R: {"R1": 1.0}, d_high=lambda s, R: {"R2": 1.0}),
    "fixed": Variant(  # eq. 13 + 16
        init=lambda R0, ratio: {"R1": (R0, False), "R2": (ratio * R0, False)},
        low=lambda s, R: s["R1"], high=lambda s, R: s["R2"], d_low=_none, d_high=_none),
    "sep": Variant(  # eq. 17 + 18
        init=lambda R0, ratio: {"Rs": (torch.full_like(R0, ratio), True)},
        low=lambda s, R: R, high=lambda s, R: s["Rs"] * R,
        d_low=lambda s, R: {"R": 1.0}, d_high=lambda s, R: {"Rs": R, "R": s["Rs"]},
        relative=True),
    "one_scale": Variant(  # eq. 13 with R2 replaced by R1 (Sec. 3.2)
        init=lambda R0, ratio: {"R1": (R0, True)},
        low=lambda s, R: s["R1"], high=None, d_low=lambda s, R: {"R1": 1.0}, d_high=_none),
}


def margin_of(logits: Tensor, target: Tensor) -> Tensor:
    """δX = z_y - max_{i != y} z_i (Sec. 2.2), shape of target."""
    z_y = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, target.unsqueeze(-1), float("-inf"))
    return z_y - others.amax(-1)


class TwoScaleLoss(Loss):
    """CE on c X̂ with the scale c of the sample's branch (module docstring)."""

    needs = frozenset({"scale_params", "weight_norm"})

    def __init__(self, variant: str, eta: float, ratio: float, margin: str, r_biases: bool,
                 r_grad: bool) -> None:
        self.variant, self.eta, self.ratio = variant, eta, ratio
        self.margin, self.r_biases, self.r_grad = margin, r_biases, r_grad
        self._form = VARIANTS[variant]
        self._bound: Scales = {}  # the scales of the model given to ``bind``

    # -- trainer hooks ------------------------------------------------------------------------
    def bind(self, model: torch.nn.Module) -> None:
        """Scales for this model from R(α⁰) (on its device)."""
        with torch.no_grad():
            self._bound = self.init_scales(parameter_scale(model, self.r_biases))

    def parameters(self) -> list[Tensor]:
        return [t for t in self._bound.values() if t.requires_grad]

    def step_inputs(self, model: torch.nn.Module, batch_index: Tensor) -> dict[str, Any]:
        R = parameter_scale(model, self.r_biases)
        return {"scales": self._bound, "weight_norm": R if self.r_grad else R.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"scales": {k: v.detach().clone() for k, v in self._bound.items()}}

    def stack_slots(self, losses: Sequence[Loss]) -> TwoScaleLoss | None:
        """One loss for stack slots of this variant that differ at most in η (an η sweep, or
        the same method on other labels): η per slot, ``[Lg, 1, 1]`` against the margins
        ``[S, Lg, R, b]``; None when any other setting differs."""
        same = ("variant", "ratio", "margin", "r_biases", "r_grad")
        if not all(isinstance(o, TwoScaleLoss) and all(getattr(o, a) == getattr(self, a)
                                                       for a in same) for o in losses):
            return None
        merged = copy.copy(self)
        merged.eta = torch.tensor([float(o.eta) for o in losses]).view(-1, 1, 1)
        merged._bound = {}
        return merged

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

    def eval_logits(self, logits: Tensor, model: Any,
                    weight_norm: float | Tensor | None = None) -> Tensor:
        """Test-time logits c_low X̂: R1 X̂ (Sec. 3.2), or z for ``two_scale_sep``.

        Trainer hook ``eval_logits(logits, model)``: the bound scales and R(model). The
        stand-alone form ``eval_logits(logits, scales, weight_norm)`` takes them explicitly.
        """
        if weight_norm is None:
            scales = self._bound
            with torch.no_grad():
                weight_norm = parameter_scale(model, self.r_biases)
        else:
            scales = model
        R = _as_scale(self.id or self.variant, weight_norm, check=False).detach().to(
            logits.dtype)
        ratio = self._ratio(self._form.low, {k: v.detach() for k, v in scales.items()}, R)
        return logits * ratio.to(logits.dtype).unsqueeze(-1)

    # -- the loss -----------------------------------------------------------------------------
    def init_scales(self, weight_norm: float | Tensor) -> Scales:
        """Initial scales for a model of size ``weight_norm`` = R(α⁰) (eq. 9)."""
        R0 = _as_scale(self.id or self.variant, weight_norm).detach()
        R0 = R0.to(torch.get_default_dtype() if not R0.is_floating_point() else R0.dtype)
        return {k: v.clone().requires_grad_(trainable)
                for k, (v, trainable) in self._form.init(R0, self.ratio).items()}

    def check_extra(self, logits: Tensor, target: Tensor, extra: dict[str, Any]) -> None:
        unknown = set(extra) - {"scales", "weight_norm"}
        if unknown or "scales" not in extra or "weight_norm" not in extra:
            raise LossbenchError(
                f"loss '{self.id}' needs scales=loss.init_scales(R) and weight_norm=R "
                f"(R: eq. 9, product of layer parameter norms); got extra inputs "
                f"{sorted(extra)}."
            )
        want = set(self._form.init(torch.ones(()), 1.0))
        scales = extra["scales"]
        if not isinstance(scales, dict) or set(scales) != want or not all(
                isinstance(v, Tensor) for v in scales.values()):
            raise LossbenchError(
                f"loss '{self.id}': scales must be a dict with tensor keys {sorted(want)} (from "
                f"loss.init_scales); got {scales!r}."
            )
        R = _as_scale(self.id or self.variant, extra["weight_norm"])
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

    def _ratio(self, branch: Callable[[Scales, Tensor], Tensor], scales: Scales,
               R: Tensor) -> Tensor:
        """c / R of one branch (``Variant.relative``: without dividing by R)."""
        if self._form.relative:
            return branch(scales, torch.ones_like(R))
        return branch(scales, R) / R

    def _branches(self, logits: Tensor, target: Tensor, scales: Scales,
                  R: Tensor) -> tuple[Tensor, Tensor]:
        """(c / R, small) per sample: ``small`` where δX < η (eq. 13 / 17), c its branch's
        scale."""
        low = self._ratio(self._form.low, scales, R).to(logits.dtype)
        if self._form.high is None:
            return low.expand(target.shape), torch.ones_like(target, dtype=torch.bool)
        high = self._ratio(self._form.high, scales, R).to(logits.dtype)
        with torch.no_grad():  # the split is piecewise constant in α: no gradient
            margin = margin_of(logits, target)
            if self.margin == "normalised":
                margin = margin / R.detach().to(logits.dtype)
            small = margin < self.eta
        return torch.where(small, low, high), small

    def _inputs(self, scales: Scales | None, weight_norm: Any, dtype: torch.dtype) -> Tensor:
        if scales is None or weight_norm is None:
            raise LossbenchError(
                f"loss '{self.id}' needs scales=loss.init_scales(R) and weight_norm=R."
            )
        return _as_scale(self.id or self.variant, weight_norm, check=False).to(dtype)

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   scales: Scales | None = None, weight_norm: Any = None,
                   **extra: Any) -> Tensor:
        R = self._inputs(scales, weight_norm, logits.dtype)
        ratio, _ = self._branches(logits, target, scales, R)
        u = logits * ratio.unsqueeze(-1)  # c X̂ = (c / R) z
        return -torch.log_softmax(u, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)

    def closed_form_grads(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                          scales: Scales | None = None,
                          weight_norm: Any = None) -> dict[str, Tensor]:
        """Per-sample derivatives of the loss: ``logits`` [..., C], each trainable scale and
        ``weight_norm`` (R) [...] (each sample's own contribution; sum them over samples).
        ``value_and_grads`` has the formulas."""
        return self.value_and_grads(logits, target, progress, scales, weight_norm)[1]

    @torch.no_grad()
    def value_and_grads(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                        scales: Scales | None = None, weight_norm: Any = None
                        ) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample values and ``closed_form_grads`` from one log-softmax (an engine's step).

        With u = c z / R, g = softmax(u) - onehot(y): dL/dz = (c / R) g; dL/dc = Σ_i g_i z_i / R
        = Σ_{i != y} (X̂_i - X̂_y) softmax(u)_i, which is eq. 15 for c = R2 (<= 0 when δX > 0);
        dL/dR = dL/dc (∂c/∂R - c / R) (zero for ``two_scale_sep``, whose c is R or R_s R).
        """
        R = self._inputs(scales, weight_norm, logits.dtype).detach()
        scales = {k: v.detach() for k, v in scales.items()}
        ratio, small = self._branches(logits, target, scales, R)  # c / R
        logp = torch.log_softmax(logits * ratio.unsqueeze(-1), -1)
        values = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        p = logp.exp_()
        # dL/dc in eq. 15's form Σ_i p_i (X̂_i - X̂_y): no cancellation, so its sign is exact
        # even where p_y rounds to 1 (Σ_i (p - onehot)_i X̂_i is the same number in exact math)
        dc = (p * (logits - logits.gather(-1, target.unsqueeze(-1)))).sum(-1) / R
        g = p.scatter_add(-1, target.unsqueeze(-1), torch.full_like(p[..., :1], -1.0))
        out = {"logits": g * ratio.unsqueeze(-1)}
        trainable = [k for k, (_, t) in self._form.init(torch.ones(()), 1.0).items() if t]
        grads = {name: torch.zeros_like(dc) for name in [*trainable, "R"]}
        for partial, branch in ((self._form.d_low, small), (self._form.d_high, ~small)):
            for name, d in partial(scales, R).items():
                grads[name] = grads[name] + torch.where(branch, dc * d, 0.0)
        out.update({k: v for k, v in grads.items() if k != "R"})
        out["weight_norm"] = grads["R"] - dc * ratio
        return values, out


def _build(variant: str, loss_id: str, eta: float, ratio: float, margin: str, r_biases: bool,
           r_grad: bool) -> TwoScaleLoss:
    eta = check_param(loss_id, "eta", eta, low=0.0, low_open=True)
    ratio = check_param(loss_id, "ratio", ratio, low=0.0, low_open=True)
    if margin not in MARGINS:
        raise LossbenchError(f"The 'margin' parameter of make_loss('{loss_id}') must be one of "
                             f"{', '.join(MARGINS)}. Got {margin!r} instead.")
    for name, value in (("r_biases", r_biases), ("r_grad", r_grad)):
        if not isinstance(value, bool):
            raise LossbenchError(f"The '{name}' parameter of make_loss('{loss_id}') must be a "
                                 f"bool. Got {value!r} instead.")
    return TwoScaleLoss(variant, eta, ratio, margin, r_biases, r_grad)


@register_loss("two_scale", label="Two-scale")
def two_scale(eta: float = 0.01, ratio: float = RATIO, margin: str = "raw",
              r_biases: bool = True, r_grad: bool = True) -> TwoScaleLoss:
    """Eq. 13 trained by eq. 14: R1, R2 trainable, init R1 = R(α⁰), R2 = ratio R1 (Sec. 3.2);
    η > 0 (the paper's sweep: 0.01 ... 100)."""
    return _build("two_scale", "two_scale", eta, ratio, margin, r_biases, r_grad)


@register_loss("two_scale_fixed", label="Two-scale (fixed)")
def two_scale_fixed(eta: float = 0.01, ratio: float = RATIO, margin: str = "raw",
                    r_biases: bool = True, r_grad: bool = True) -> TwoScaleLoss:
    """Eq. 13 trained by eq. 16: R1 = R0, R2 = ratio R0 constants, R0 = R(α⁰) (Sec. 3.4)."""
    return _build("fixed", "two_scale_fixed", eta, ratio, margin, r_biases, r_grad)


@register_loss("two_scale_sep", label="Two-scale (sep)")
def two_scale_sep(eta: float = 0.01, ratio: float = RATIO, margin: str = "raw",
                  r_biases: bool = True, r_grad: bool = True) -> TwoScaleLoss:
    """Eq. 17 trained by eq. 18: CE on z where δX < η, on R_s z elsewhere; R_s a trainable
    ratio, init ``ratio`` (Sec. 3.5)."""
    return _build("sep", "two_scale_sep", eta, ratio, margin, r_biases, r_grad)


@register_loss("one_scale", label="One-scale")
def one_scale(r_biases: bool = True, r_grad: bool = True) -> TwoScaleLoss:
    """The paper's baseline: eq. 13 with R2 replaced by R1 (Sec. 3.2), CE on R1 X̂ for every
    sample, R1 trainable, init R(α⁰)."""
    return _build("one_scale", "one_scale", 1.0, RATIO, "raw", r_biases, r_grad)
