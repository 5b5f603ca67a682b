"""Baselines cited by the seed papers: COT, MPCE, tamed CE and the mixing paper's CE-gradnorm
ablation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from bench.errors import LossbenchError
from bench.losses._base import TargetProbLoss, check_param, target_log_prob
from bench.losses._mixing import SCHEDULE_RULES, MixingLoss
from bench.losses._registry import make_loss, register_loss


def _complement_logits(logits: Tensor, target: Tensor) -> Tensor:
    """The C - 1 non-target logits [..., C-1], gathered without masking (no -inf, no NaN)."""
    C = logits.shape[-1]
    j = torch.arange(C - 1, device=logits.device)
    idx = j + (j >= target.unsqueeze(-1)).to(j.dtype)  # skip the target column
    return logits.gather(-1, idx)


class COTLoss(MixingLoss):
    """Complement objective training (Chen et al., ICLR 2019).

    Primary pass: CE (values and closed-form gradient as ``ce``). Second pass (needs
    {"complement_pass"}): the engine minimises ``loss.complement(logits, target)`` per batch
    with a second optimiser step, i.e. maximises the normalised complement entropy.
    """

    needs = frozenset({"complement_pass"})

    def __init__(self) -> None:
        super().__init__([(1.0, 0.0)])

    def complement(self, logits: Tensor, target: Tensor) -> Tensor:
        """Per-sample -H(complement)/C to MINIMISE: sum_{j != y} P_j log P_j / C with
        P_j = p_j / (1 - p_y), normalised by the number of classes C as in the authors' code.
        Computed as a log-softmax over the non-target logits (exact, no epsilon)."""
        logq = torch.log_softmax(_complement_logits(logits, target), dim=-1)
        return (logq.exp() * logq).sum(-1) / logits.shape[-1]


@register_loss("cot", label="COT")
def cot() -> COTLoss:
    """CE plus a second pass maximising the complement entropy (needs "complement_pass")."""
    return COTLoss()


class MPCELoss(TargetProbLoss):
    """-(max_j p_j - p_y) log p_y: zero once the target is the top class.

    Differentiated through both p_max and p_y (the argmax taken as torch.max picks it, so the
    closed form equals autograd, ties included).
    """

    def per_sample(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                   **extra: Any) -> Tensor:
        logp, logp_y = target_log_prob(logits, target)
        return (logp_y.exp() - logp.max(-1).values.exp()) * logp_y

    def grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                       **extra: Any) -> Tensor:
        return self.value_and_grad_unchecked(logits, target, progress)[1]

    def value_and_grad_unchecked(self, logits: Tensor, target: Tensor, progress: float = 0.0,
                                 **extra: Any) -> tuple[Tensor, Tensor]:
        logp, logp_y = target_log_prob(logits, target)
        lmax, m = logp.max(-1)
        p_y, p_m = logp_y.exp(), lmax.exp()
        gap = p_m - p_y
        value = -gap * logp_y
        # L = -(p_m - p_y) s: dL/dz = -s [p_m (e_m - p) - p_y (e_y - p)] - gap (e_y - p)
        #   = (gap + s gap) p - s p_m e_m + (s p_y - gap) e_y, gathered per class index.
        grad = logp.exp().mul_((gap * (1.0 + logp_y)).unsqueeze(-1))
        grad.scatter_add_(-1, m.unsqueeze(-1), (-logp_y * p_m).unsqueeze(-1))
        grad.scatter_add_(-1, target.unsqueeze(-1), (logp_y * p_y - gap).unsqueeze(-1))
        return value, grad


@register_loss("mpce", label="MPCE")
def mpce() -> MPCELoss:
    """Max-probability-gap CE, -(max_j p_j - p_y) log p_y."""
    return MPCELoss()


class TamedCELoss(TargetProbLoss):
    """Tamed cross-entropy (Martinez & Stiefelhagen, GCPR 2018; mixing paper eq. 4).

    With s = log p_y: L = ((1 - s)^(1 - alpha) - 1) / (1 - alpha), and log(1 - s) at alpha = 1
    (the limit). Its gradient is CE's times (1 - s)^(-alpha): coef = -dL/ds = (1 - s)^(-alpha),
    1 at p_y = 1 (CE's training near a fit sample) and damped for confidently wrong samples,
    which are the likely mislabelled ones. alpha = 0 is CE exactly.

    Eq. 4 as extracted, (1 / (1 - alpha)) ((1 - s)^(1 - alpha) - 1 / (1 - alpha)), differs from
    this by the constant alpha / (1 - alpha)^2 only (same gradient, same training); this form is
    0 at p_y = 1 as CE is.
    """

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def value(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        log_u = torch.log1p(-logp_y)  # log(1 - s) >= 0
        if self.alpha == 1.0:
            return log_u
        k = 1.0 - self.alpha
        return torch.expm1(log_u * k) / k

    def coef(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        if self.alpha == 0.0:
            return torch.ones_like(logp_y)
        return torch.log1p(-logp_y).mul_(-self.alpha).exp_()


@register_loss("tce", label="TCE")
def tce(alpha: float = 0.5) -> TamedCELoss:
    """Tamed CE, ((1 - log p_y)^(1 - alpha) - 1) / (1 - alpha); alpha = 0 is CE, larger alpha
    damps the gradient of low-p_y samples more (label noise)."""
    return TamedCELoss(check_param("tce", "alpha", alpha, low=0.0))


#: Which area under the gradient of a mix sets ce_gradnorm's factor (mixing paper, ablation
#: before "ImageNet"): eq. 21 (target logit, i = j), eq. 22 (a non-target logit, i != j), or
#: the two areas summed (over CE's two areas summed).
VOLUMES = ("on_target", "off_target", "both")
#: How ce_gradnorm applies the factor: on CE's gradient, per phase (the engine fuses it), or on
#: the learning rate (a trainer's lr multiplier is one constant per run: one-phase schedules).
APPLY = ("gradient", "lr")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise LossbenchError(
            f"The '{name}' parameter of make_loss('ce_gradnorm') must be one of "
            f"{', '.join(map(repr, allowed))}; got {value!r}."
        )
    return value


def mix_gradient_volume(alpha: float, beta: float, volume: str = "on_target") -> float:
    """Area under |dL/dq| of alpha CE + beta EL (eq. 13) over the unit interval / square.

    On target (eq. 21): |dL/dq_y| = (alpha + beta p)(1 - p), integral over p_y in [0, 1] =
    alpha / 2 + beta / 6. Off target (eq. 22): dL/dq_j = p_j (alpha + beta p_y), integral over
    p_y, p_j in [0, 1] (the paper's unit square, not the simplex) = alpha / 2 + beta / 4.
    CE (alpha = 1, beta = 0) gives 1/2 for both: V_ce of eq. 20.
    """
    on, off = alpha / 2 + beta / 6, alpha / 2 + beta / 4
    return {"on_target": on, "off_target": off, "both": on + off}[volume]


def gradient_volume(loss: TargetProbLoss, progress: float = 0.0,
                    volume: str = "on_target") -> float:
    """The areas of ``mix_gradient_volume`` for any loss f(log p_y) at ``progress``: closed form
    for the CE/EL mixes (``affine_coef``), scipy quadrature of ``loss.coef`` otherwise."""
    ab = loss.affine_coef(progress)
    if ab is not None:
        return mix_gradient_volume(*ab, volume)

    from scipy import integrate  # lazy: only non-mix losses need quadrature

    def coef(p: float) -> float:  # quad samples interior points only: p > 0
        return float(loss.coef(torch.tensor(math.log(p), dtype=torch.float64), progress))

    on = integrate.quad(lambda p: coef(p) * (1.0 - p), 0.0, 1.0, limit=200)[0]
    off = 0.5 * integrate.quad(coef, 0.0, 1.0, limit=200)[0]  # int p_j dp_j = 1/2
    return {"on_target": on, "off_target": off, "both": on + off}[volume]


class CEGradNormLoss(MixingLoss):
    """CE with its step scaled, phase by phase, to the gradient area of a CE/EL schedule.

    The mixing paper's ablation: for each phase F of the schedule (default: strategy 3, F = 0-0.5,
    with that schedule's phase starts), M_F = V_ab(F) / V_ce, V_ce = 1/2 (eq. 20) and V_ab the
    area under the mix's gradient, eq. 21 (``volume="on_target"``, the default: the target
    logit's gradient, the curve of Fig. 1 the ablation answers), eq. 22
    (``"off_target"``) or both summed (``"both"``). The paper states both equations and then one
    M without saying which; eq. 20's "simply 1/2" is CE's target-logit area.

    ``apply="gradient"`` (default): the loss is M_F * CE, so its gradient is CE's times M_F and
    a plain SGD step is CE's with the lr times M_F (the paper's "multiplying the learning rate");
    with momentum the two differ only for the few steps after a phase change (the buffer holds the
    previous factor), and with Adam a gradient factor does nothing. ``apply="lr"``: values and
    gradients are CE's and the trainer multiplies the lr by M (needs {"lr_multiplier"}, one
    constant per run, so only for one-phase schedules such as ``ce_el_0``).
    """

    def __init__(self, factors: Sequence[float], starts: Sequence[float], rule: str | None,
                 apply: str, schedule: str, volume: str) -> None:
        self.factors = tuple(float(m) for m in factors)
        self.schedule, self.volume, self.apply = schedule, volume, apply
        if apply == "lr":
            assert len(self.factors) == 1, "a constant lr multiplier needs one phase"
            super().__init__([(1.0, 0.0)], (0.0,), rule)
            self.lr_multiplier = self.factors[0]
            self.needs = frozenset({"lr_multiplier"})
        else:
            super().__init__([(m, 0.0) for m in self.factors], starts, rule)
            self.needs = frozenset()

    def factor(self, progress: float) -> float:
        """M of the phase active at ``progress``."""
        return self.factors[self.phase(progress)] if self.apply == "gradient" else self.factors[0]

    def __repr__(self) -> str:
        return (f"make_loss('ce_gradnorm', schedule={self.schedule!r}, volume={self.volume!r}, "
                f"apply={self.apply!r})  # M {self.factors} from {self.starts}")


#: Schedules ce_gradnorm can match: the registered CE/EL mixes (MixingLoss) with default params.
GRADNORM_SCHEDULES = ("ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05")


@register_loss("ce_gradnorm", label="CE (grad-norm lr)")
def ce_gradnorm(schedule: str = "ce_el_0to05", rule: str = "official",
                volume: str = "on_target", apply: str = "gradient") -> CEGradNormLoss:
    """CE scaled per phase by M_F = V_ab(F) / V_ce (mixing paper eqs. 20-22) of ``schedule``'s
    phases (``rule`` = its phase starts, as for that id); see ``CEGradNormLoss``."""
    schedule = _check_choice("schedule", schedule, GRADNORM_SCHEDULES)
    volume = _check_choice("volume", volume, VOLUMES)
    apply = _check_choice("apply", apply, APPLY)
    _check_choice("rule", rule, tuple(SCHEDULE_RULES))
    scheduled = schedule in SCHEDULE_RULES["official"]
    ref = make_loss(schedule, rule=rule) if scheduled else make_loss(schedule)
    v_ce = mix_gradient_volume(1.0, 0.0, volume)
    factors = [mix_gradient_volume(a, b, volume) / v_ce for a, b in ref.phases]
    if apply == "lr" and len(factors) > 1:
        raise LossbenchError(
            f"make_loss('ce_gradnorm'): apply='lr' needs a one-phase schedule (a trainer's lr "
            f"multiplier is constant per run); '{schedule}' has {len(factors)} phases. Use "
            f"apply='gradient' or schedule='ce_el_0'."
        )
    return CEGradNormLoss(factors, ref.starts, ref.rule, apply, schedule, volume)
