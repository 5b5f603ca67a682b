"""Baselines cited by the seed papers: COT, MPCE and the mixing paper's CE-gradnorm ablation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bench.errors import LossbenchError
from bench.losses._base import TargetProbLoss, check_param, target_log_prob
from bench.losses._mixing import MixingLoss, gradient_area
from bench.losses._registry import register_loss


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


class CEGradNormLoss(MixingLoss):
    """CE whose learning rate the engine multiplies by ``lr_multiplier`` (needs
    {"lr_multiplier"}): M = V_mix / V_ce, the areas under |dL/dq_y| over p_y in [0, 1] of the
    alpha CE + beta EL mix and of CE (mixing paper eqs. 20-22; 4/3 for alpha = beta = 1).
    Values and gradients are those of CE."""

    needs = frozenset({"lr_multiplier"})

    def __init__(self, alpha: float, beta: float) -> None:
        super().__init__([(1.0, 0.0)])
        self.alpha, self.beta = alpha, beta
        self.lr_multiplier = (gradient_area(MixingLoss([(alpha, beta)]))
                              / gradient_area(MixingLoss([(1.0, 0.0)])))


@register_loss("ce_gradnorm", label="CE (grad-norm lr)")
def ce_gradnorm(alpha: float = 1.0, beta: float = 1.0) -> CEGradNormLoss:
    """CE with the learning rate scaled to match the gradient area of alpha CE + beta EL."""
    a = check_param("ce_gradnorm", "alpha", alpha, low=0.0)
    b = check_param("ce_gradnorm", "beta", beta, low=0.0)
    if a == 0.0 and b == 0.0:
        raise LossbenchError("make_loss('ce_gradnorm'): alpha and beta cannot both be 0.")
    return CEGradNormLoss(a, b)
