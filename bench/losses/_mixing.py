"""CE, EL and their scheduled mixes (Battash, Hazan & Wolf, AAAI 2022), and the focal loss.

Notation of the mixing paper: q = logits, p = softmax(q), p_y = probability of the target.
CE = -log p_y (eq. 7), EL = 1 - p_y (eq. 9), mix = alpha CE + beta EL (eq. 12) with
alpha = 1, beta = 1 / (1 - 2F) for F < 0.5 and alpha = 0, beta = 1 at F = 0.5.
All gradients are ``(alpha + beta p_y) (p - onehot)`` (eq. 13), computed in closed form.

Schedules: a loss with several phases switches phase on ``progress`` = epoch / n_epochs (at
the start of the epoch). Phase i is active when ``progress >= starts[i]`` (up to 1e-9), so at
n epochs phase i starts at epoch ceil(starts[i] * n) (see ``MixingLoss.phase_starts``).

The two scheduled ids take a ``rule`` naming where their phase starts come from
(``SCHEDULE_RULES``):

- ``rule="official"`` (default; the UCI table): the official code's start epochs at 50 epochs
  divided by 50, so a 50-epoch run reproduces the official code exactly (ce_el_0_05: epochs
  47-49, i.e. ``epoch >= int(0.95 * 50)``; ce_el_0to05: phases start at 0, 8, 17, 25, 34, 42).
- ``rule="paper"`` (image runs): the text of the mixing paper, section "Scheduling"
  (configurations 2 and 3, identical in both extractions): F = 0,0.5 is CE+EL "for 95% of the
  training epochs and in the last 5%" EL only, i.e. EL only from progress 0.95 (240 epochs:
  epochs 228-239); F = 0-0.5 has six phases "of equal length", one-sixth of the epochs each,
  i.e. starts i / 6 (240 epochs: 0, 40, 80, 120, 160, 200; at a count not divisible by 6 the
  phases differ by at most one epoch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from bench.errors import LossbenchError
from bench.losses._base import TargetProbLoss, check_param
from bench.losses._registry import register_loss

_EPS = 1e-9
#: Official phase starts / 50 epochs (see the module docstring).
STARTS_0_05 = (0.0, 47 / 50)
STARTS_0TO05 = (0.0, 8 / 50, 17 / 50, 25 / 50, 34 / 50, 42 / 50)
#: The paper's rule: EL only in the last 5 %; six equal phases (see the module docstring).
PAPER_STARTS_0_05 = (0.0, 0.95)
PAPER_STARTS_0TO05 = tuple(i / 6 for i in range(6))
#: rule -> loss id -> phase starts (fractions of training) of the scheduled ids.
SCHEDULE_RULES: dict[str, dict[str, tuple[float, ...]]] = {
    "official": {"ce_el_0_05": STARTS_0_05, "ce_el_0to05": STARTS_0TO05},
    "paper": {"ce_el_0_05": PAPER_STARTS_0_05, "ce_el_0to05": PAPER_STARTS_0TO05},
}


def mixing_coefficients(F: float) -> tuple[float, float]:
    """(alpha, beta) of the mixing paper for a given F in [0, 0.5]."""
    if F >= 0.5:
        return 0.0, 1.0
    return 1.0, 1.0 / (1.0 - 2.0 * F)


def _rule_starts(loss_id: str, rule: Any) -> tuple[float, ...]:
    """Phase starts of ``loss_id`` under ``rule`` (a key of ``SCHEDULE_RULES``)."""
    if not isinstance(rule, str) or rule not in SCHEDULE_RULES:
        raise LossbenchError(
            f"The 'rule' parameter of make_loss('{loss_id}') must be one of "
            f"{', '.join(map(repr, SCHEDULE_RULES))}; got {rule!r}."
        )
    return SCHEDULE_RULES[rule][loss_id]


def _check_starts(loss_id: str, starts: Any, n_phases: int) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in starts)
    except (TypeError, ValueError) as err:
        raise LossbenchError(
            f"The 'boundaries' parameter of make_loss('{loss_id}') must be a list of floats; "
            f"got {starts!r}."
        ) from err
    ok = (len(values) == n_phases and values[0] == 0.0
          and all(0.0 <= b <= 1.0 for b in values)
          and all(a < b for a, b in zip(values, values[1:], strict=False)))
    if not ok:
        raise LossbenchError(
            f"The 'boundaries' parameter of make_loss('{loss_id}') must be {n_phases} increasing "
            f"fractions of training in [0, 1] starting with 0 (one start per F); got {starts!r}."
        )
    return values


class MixingLoss(TargetProbLoss):
    """alpha CE + beta EL with a piecewise-constant (alpha, beta) schedule over ``progress``.

    ``phases`` is a list of (alpha, beta); phase i is active from ``starts[i]`` on. ``rule``
    records which ``SCHEDULE_RULES`` entry gave the starts (None for fixed or custom ones).
    """

    def __init__(self, phases: Sequence[tuple[float, float]],
                 starts: Sequence[float] = (0.0,), rule: str | None = None) -> None:
        assert len(phases) == len(starts) and starts[0] == 0.0, "one start per phase, first 0"
        self.phases = tuple((float(a), float(b)) for a, b in phases)
        self.starts = tuple(float(s) for s in starts)
        self.rule = rule

    def phase(self, progress: float) -> int:
        """Index of the phase active at ``progress`` (epoch / n_epochs)."""
        i = 0
        for j, s in enumerate(self.starts):
            if progress + _EPS >= s:
                i = j
        return i

    def alpha_beta(self, progress: float) -> tuple[float, float]:
        """(alpha, beta) used at ``progress``."""
        return self.phases[self.phase(progress)]

    def affine_coef(self, progress: float) -> tuple[float, float]:
        """coef = alpha + beta p_y (eq. 13): the engine batches every mix in one expression."""
        return self.alpha_beta(progress)

    def phase_starts(self, n_epochs: int) -> list[int]:
        """First (0-based) epoch of each phase in an ``n_epochs`` run (progress = epoch / n)."""
        return [next((e for e in range(n_epochs + 1) if e / n_epochs + _EPS >= s), n_epochs)
                for s in self.starts]

    def value(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        alpha, beta = self.alpha_beta(progress)
        if beta == 0.0:
            return logp_y.neg() if alpha == 1.0 else logp_y * -alpha
        el = -torch.expm1(logp_y)  # 1 - p_y, accurate near p_y = 1 (no in-place: autograd)
        if alpha == 0.0:
            return el if beta == 1.0 else el * beta
        return torch.add(el * beta, logp_y, alpha=-alpha)

    def coef(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        alpha, beta = self.alpha_beta(progress)
        if beta == 0.0:
            return torch.full_like(logp_y, alpha)
        return logp_y.exp().mul_(beta).add_(alpha)

    def __repr__(self) -> str:
        rule = "" if self.rule is None else f", rule={self.rule!r}"
        return (f"make_loss('{self.id}'{rule})  # phases (alpha, beta) {self.phases} "
                f"from {self.starts}")


@register_loss("ce", label="CE")
def ce() -> MixingLoss:
    """Cross-entropy, -log p_y (mixing paper eq. 7; gradient p - onehot, eq. 8)."""
    return MixingLoss([(1.0, 0.0)])


@register_loss("el", label="EL")
def el() -> MixingLoss:
    """Expectation loss 1 - p_y (mixing paper eq. 9; gradient p_y (p - onehot), eq. 10).

    The official code reports the batch 0-1 error with a straight-through gradient; we report
    1 - p_y, whose gradient is the same, so training is identical and the value is smooth.
    """
    return MixingLoss([(0.0, 1.0)])


@register_loss("ce_el_0", label="CE+EL F=0")
def ce_el_0() -> MixingLoss:
    """CE + EL with F = 0 (alpha = beta = 1) throughout."""
    return MixingLoss([mixing_coefficients(0.0)])


@register_loss("ce_el_0_05", label="CE+EL F=0,0.5")
def ce_el_0_05(rule: str = "official") -> MixingLoss:
    """F = 0, then F = 0.5 (EL only) for the last 5 %: from epoch 47 of 50 as the official code
    (``rule="official"``, the UCI default) or from progress 0.95 (``rule="paper"``)."""
    return MixingLoss([mixing_coefficients(0.0), mixing_coefficients(0.5)],
                      _rule_starts("ce_el_0_05", rule), rule)


@register_loss("ce_el_0to05", label="CE+EL F=0–0.5")
def ce_el_0to05(rule: str = "official") -> MixingLoss:
    """Six phases F = 0, .1, ..., .5: starts 0, 8, 17, 25, 34, 42 of 50 as the official code
    (``rule="official"``, the UCI default) or six equal phases i / 6 (``rule="paper"``)."""
    Fs = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    return MixingLoss([mixing_coefficients(F) for F in Fs], _rule_starts("ce_el_0to05", rule),
                      rule)


class FocalLoss(TargetProbLoss):
    """Focal loss -alpha (1 - p_y)^gamma log p_y (Lin et al. 2017), scalar alpha."""

    def __init__(self, gamma: float, alpha: float) -> None:
        self.gamma, self.alpha = gamma, alpha
        # the float32 values of gamma and alpha as 0-dim tensors: the same products as with
        # the Python floats, without a wrapped scalar's cast on every call (the engine's step)
        self._g32 = torch.tensor(gamma, dtype=torch.float32)
        self._a32 = torch.tensor(alpha, dtype=torch.float32)

    def value(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        one_minus = -torch.expm1(logp_y)
        return one_minus.pow(self.gamma) * logp_y * -self.alpha

    def coef(self, logp_y: Tensor, progress: float, **extra: Any) -> Tensor:
        # -dL/ds = alpha (1-p)^g - alpha g p s (1-p)^(g-1), s = log p_y
        a, g = self.alpha, self.gamma
        if g == 0.0:
            return torch.full_like(logp_y, a)
        if logp_y.dtype != torch.float32 or g != 2.0:
            one_minus = torch.expm1(logp_y).neg_()
            second = one_minus.pow(g - 1.0) if g >= 1.0 else torch.where(
                one_minus > 0, one_minus.pow(g - 1.0), torch.zeros_like(one_minus))
            second = second.mul_(logp_y.exp()).mul_(logp_y).mul_(g)
            return one_minus.pow_(g).sub_(second).mul_(a)
        # g = 2 in float32 (the paper's focal, every engine step): the expression above with
        # its exact no-ops dropped, bitwise the same: e = expm1(s) = -(1-p), so (1-p)^2 = e^2
        # and -(1-p) p s g = e p s g (sign flips are exact), and (1-p)^1 is (1-p)
        e = torch.expm1(logp_y)
        second = torch.exp(logp_y).mul_(e).mul_(logp_y).mul_(self._g32)
        return e.mul_(e).add_(second).mul_(self._a32)


@register_loss("focal", label="Focal")
def focal(gamma: float = 2.0, alpha: float = 0.25) -> FocalLoss:
    """Focal loss with gamma = 2 and a scalar alpha = 0.25 (the paper's defaults)."""
    return FocalLoss(check_param("focal", "gamma", gamma, low=0.0),
                     check_param("focal", "alpha", alpha, low=0.0, low_open=True))


@register_loss("ce_el", label="CE+EL")
def ce_el(F: Sequence[float] = (0.0,), boundaries: Sequence[float] | None = None) -> MixingLoss:
    """General CE+EL schedule: one F in [0, 0.5] per phase; ``boundaries`` = phase starts as
    fractions of training (first 0; default equal phases i / len(F))."""
    if isinstance(F, int | float) and not isinstance(F, bool):
        F = [F]
    try:
        Fs = [check_param("ce_el", "F", f, low=0.0, high=0.5) for f in F]
    except TypeError as err:
        raise LossbenchError(
            f"The 'F' parameter of make_loss('ce_el') must be a list of floats in [0, 0.5]; "
            f"got {F!r}."
        ) from err
    if not Fs:
        raise LossbenchError("The 'F' parameter of make_loss('ce_el') must not be empty.")
    if boundaries is None:
        boundaries = [i / len(Fs) for i in range(len(Fs))]
    starts = _check_starts("ce_el", boundaries, len(Fs))
    return MixingLoss([mixing_coefficients(f) for f in Fs], starts)

