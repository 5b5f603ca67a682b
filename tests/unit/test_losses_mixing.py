"""CE, EL, their scheduled mixes and focal against the mixing paper's formulas (eqs. 7-13)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.errors import LossbenchError
from bench.losses import make_loss

UCI_IDS = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]
F_PHASES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def two_class_logits(p_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [n, 2] whose target (class 1) probability is exactly ``p_y``."""
    p_y = torch.as_tensor(p_y, dtype=torch.float64)
    z = torch.stack([torch.zeros_like(p_y), torch.log(p_y) - torch.log1p(-p_y)], dim=-1)
    return z, torch.ones(p_y.shape, dtype=torch.int64)


def autograd_grad(loss, logits, target, progress=0.0, **extra):
    z = logits.detach().clone().requires_grad_(True)
    values = loss(z, target, progress, **extra)
    (g,) = torch.autograd.grad(values.sum(), z)
    return values.detach(), g


def alpha_beta(F: float) -> tuple[float, float]:
    return (0.0, 1.0) if F == 0.5 else (1.0, 1.0 / (1.0 - 2.0 * F))


def test_labels_and_ids():
    labels = {i: make_loss(i).label for i in UCI_IDS}
    assert labels == {"ce": "CE", "el": "EL", "ce_el_0": "CE+EL F=0",
                      "ce_el_0_05": "CE+EL F=0,0.5", "ce_el_0to05": "CE+EL F=0–0.5",
                      "focal": "Focal"}
    for i in UCI_IDS:
        loss = make_loss(i)
        assert loss.id == i and loss.needs == frozenset()


def test_values_at_hand_computed_point():
    z, t = two_class_logits(torch.tensor([0.75]))  # p_y = 3/4
    ce, el = -math.log(0.75), 0.25
    expect = {"ce": ce, "el": el, "ce_el_0": ce + el, "ce_el_0_05": ce + el,
              "ce_el_0to05": ce + el, "focal": -0.25 * 0.25**2 * math.log(0.75)}
    for i, v in expect.items():
        assert make_loss(i)(z, t).item() == pytest.approx(v, rel=1e-12), i
    # later phases: EL only for F = 0.5, beta = 1/(1 - 2F) otherwise
    assert make_loss("ce_el_0_05")(z, t, 0.98).item() == pytest.approx(el, rel=1e-12)
    assert make_loss("ce_el_0to05")(z, t, 0.5).item() == pytest.approx(ce + el / 0.4, rel=1e-12)
    # three classes, logits (1, 2, 3), target 0: p_0 = e / (e + e^2 + e^3)
    p0 = math.e / (math.e + math.e**2 + math.e**3)
    z3 = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    t3 = torch.tensor([0])
    assert make_loss("ce")(z3, t3).item() == pytest.approx(-math.log(p0), rel=1e-12)
    assert make_loss("el")(z3, t3).item() == pytest.approx(1 - p0, rel=1e-12)


@pytest.mark.parametrize("loss_id", UCI_IDS + ["ce_el"])
@pytest.mark.parametrize("progress", [0.0, 0.3, 0.5, 0.97, 1.0])
def test_closed_form_gradient_equals_autograd(loss_id, progress):
    loss = make_loss(loss_id)
    logits = 3 * torch.randn(4, 7, 5, dtype=torch.float64)  # a [G, B, C] stack
    target = torch.randint(0, 5, (4, 7))
    values, g_auto = autograd_grad(loss, logits, target, progress)
    g = loss.grad_logits(logits, target, progress)
    torch.testing.assert_close(g, g_auto, rtol=1e-10, atol=1e-12)
    v2, g2 = loss.value_and_grad(logits, target, progress)
    torch.testing.assert_close(v2, values, rtol=0, atol=0)
    torch.testing.assert_close(g2, g, rtol=0, atol=0)


@pytest.mark.parametrize("F", F_PHASES)
def test_eq13_mix_gradient(F):
    """dL/dq_y = beta p_y^2 + p_y (alpha - beta) - alpha, dL/dq_j = p_j (beta p_y + alpha)."""
    a, b = alpha_beta(F)
    loss = make_loss("ce_el", F=[F])
    logits = 2 * torch.randn(50, 4, dtype=torch.float64)
    target = torch.randint(0, 4, (50,))
    _, g = autograd_grad(loss, logits, target)
    p = torch.softmax(logits, -1)
    p_y = p.gather(-1, target[:, None])
    expect = p * (b * p_y + a)
    expect.scatter_(-1, target[:, None], b * p_y**2 + p_y * (a - b) - a)
    torch.testing.assert_close(g, expect, rtol=1e-10, atol=1e-12)


def test_ce_and_el_gradients_eq8_eq10():
    logits = torch.randn(30, 3, dtype=torch.float64)
    target = torch.randint(0, 3, (30,))
    p = torch.softmax(logits, -1)
    onehot = torch.nn.functional.one_hot(target, 3).double()
    p_y = (p * onehot).sum(-1, keepdim=True)
    _, g_ce = autograd_grad(make_loss("ce"), logits, target)
    _, g_el = autograd_grad(make_loss("el"), logits, target)
    torch.testing.assert_close(g_ce, p - onehot, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_el, p_y * (p - onehot), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("F", [0.1, 0.2, 0.3, 0.4, 0.5])
def test_max_of_target_gradient_at_half_one_minus_alpha_over_beta(F):
    a, b = alpha_beta(F)
    p_grid = torch.linspace(1e-4, 1 - 1e-4, 9999, dtype=torch.float64)
    z, t = two_class_logits(p_grid)
    _, g = autograd_grad(make_loss("ce_el", F=[F]), z, t)
    argmax = p_grid[g[:, 1].abs().argmax()].item()
    assert argmax == pytest.approx(0.5 * (1 - a / b), abs=2e-4)


def test_ce_target_gradient_is_monotone():
    """CE's |dL/dq_y| = 1 - p_y is largest for the most wrong samples (F = 0: max at p_y=0)."""
    p_grid = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    z, t = two_class_logits(p_grid)
    _, g = autograd_grad(make_loss("ce_el_0"), z, t)
    assert bool((g[:, 1].abs().diff() < 0).all())


def test_focal_gamma_zero_is_alpha_ce():
    logits = torch.randn(6, 9, 4, dtype=torch.float64)
    target = torch.randint(0, 4, (6, 9))
    ce = make_loss("ce")(logits, target)
    f0 = make_loss("focal", gamma=0.0, alpha=0.3)
    torch.testing.assert_close(f0(logits, target), 0.3 * ce, rtol=1e-12, atol=0)
    torch.testing.assert_close(f0.grad_logits(logits, target),
                               0.3 * make_loss("ce").grad_logits(logits, target))


@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.0])
def test_focal_other_gammas_gradient(gamma):
    loss = make_loss("focal", gamma=gamma, alpha=1.0)
    logits = 2 * torch.randn(40, 3, dtype=torch.float64)
    target = torch.randint(0, 3, (40,))
    _, g_auto = autograd_grad(loss, logits, target)
    torch.testing.assert_close(loss.grad_logits(logits, target), g_auto, rtol=1e-9, atol=1e-12)


def _focal_coef_reference(s: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """The focal coef written out op by op (the general path's expression)."""
    one_minus = torch.expm1(s).neg_()
    second = one_minus.pow(gamma - 1.0).mul_(s.exp()).mul_(s).mul_(gamma)
    return one_minus.pow_(gamma).sub_(second).mul_(alpha)


@pytest.mark.parametrize("alpha", [0.25, 0.7])
def test_focal_float32_gamma2_fast_coef_is_bitwise_the_general_one(alpha):
    # the engine's per-step coef (float32, gamma = 2) drops exact no-ops: same bits, fewer ops
    loss = make_loss("focal", gamma=2.0, alpha=alpha)
    s = torch.cat([-torch.rand(4000) * scale for scale in (1e-7, 1e-3, 1.0, 30.0)])
    s[:3] = torch.tensor([0.0, -0.0, -1e-38])
    for view in (s, s.view(80, 200)[:, ::3]):  # contiguous and strided (the engine's slices)
        assert torch.equal(loss.coef(view, 0.0), _focal_coef_reference(view, alpha, 2.0))
    logits = 2 * torch.randn(30, 6, 5)
    target = torch.randint(0, 5, (30, 6))
    _, g_auto = autograd_grad(loss, logits, target)
    torch.testing.assert_close(loss.grad_logits(logits, target), g_auto, rtol=1e-5, atol=1e-7)


def test_focal_other_gammas_and_float64_take_the_general_coef():
    s32 = -torch.rand(500) * 5
    for gamma in (0.5, 1.0, 3.0):
        loss = make_loss("focal", gamma=gamma, alpha=0.25)
        assert torch.equal(loss.coef(s32, 0.0), _focal_coef_reference(s32, 0.25, gamma))
    s64 = s32.double()
    assert torch.equal(make_loss("focal").coef(s64, 0.0), _focal_coef_reference(s64, 0.25, 2.0))


def _phase_of_epoch(loss, epoch: int, n_epochs: int = 50) -> tuple[float, float]:
    """(alpha, beta) as seen through the loss value at two p_y values."""
    z, t = two_class_logits(torch.tensor([0.25, 0.75]))
    v = loss(z, t, epoch / n_epochs)
    ce = -torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    el = torch.tensor([0.75, 0.25], dtype=torch.float64)
    ab = torch.linalg.solve(torch.stack([ce, el], 1), v)
    return round(ab[0].item(), 9), round(ab[1].item(), 9)


def test_schedule_0_05_matches_official_at_50_epochs():
    loss = make_loss("ce_el_0_05")
    phases = [_phase_of_epoch(loss, e) for e in range(50)]
    assert phases[:47] == [(1.0, 1.0)] * 47
    assert phases[47:] == [(0.0, 1.0)] * 3  # epochs 47, 48, 49 = int(0.95 * 50) on
    assert loss.phase_starts(50) == [0, 47]


def test_schedule_0to05_matches_official_at_50_epochs():
    loss = make_loss("ce_el_0to05")
    starts = [0, 8, 17, 25, 34, 42]
    assert loss.phase_starts(50) == starts
    for e in range(50):
        phase = sum(e >= s for s in starts) - 1
        a, b = alpha_beta(F_PHASES[phase])
        assert _phase_of_epoch(loss, e) == (round(a, 9), round(b, 9)), e


#: Phase start epochs derived by hand: phase i starts at ceil(start_i * n), start_i the
#: fraction of training. official = the official start epochs at 50 / 50: F=0,0.5 47/50
#: (90: 84.6 -> 85; 240: 225.6 -> 226); F=0-0.5 8, 17, 25, 34, 42 / 50 (90: 14.4, 30.6, 45,
#: 61.2, 75.6; 240: 38.4, 81.6, 120, 163.2, 201.6). paper = mixing paper "Scheduling": EL only
#: in the last 5 % (progress >= 0.95; 50: 47.5 -> 48, 90: 85.5 -> 86, 200: 190, 240: epochs
#: 228..239) and six equal phases i / 6 (50: 8.3, 16.7, 25, 33.3, 41.7; 200: 33.3, 66.7, 100,
#: 133.3, 166.7; 240: 0, 40, 80, 120, 160, 200).
RULE_STARTS = {
    ("official", "ce_el_0_05"): {50: [0, 47], 90: [0, 85], 200: [0, 188], 240: [0, 226]},
    ("official", "ce_el_0to05"): {50: [0, 8, 17, 25, 34, 42], 90: [0, 15, 31, 45, 62, 76],
                                  200: [0, 32, 68, 100, 136, 168],
                                  240: [0, 39, 82, 120, 164, 202]},
    ("paper", "ce_el_0_05"): {50: [0, 48], 90: [0, 86], 200: [0, 190], 240: [0, 228]},
    ("paper", "ce_el_0to05"): {50: [0, 9, 17, 25, 34, 42], 90: [0, 15, 30, 45, 60, 75],
                               200: [0, 34, 67, 100, 134, 167],
                               240: [0, 40, 80, 120, 160, 200]},
}


@pytest.mark.parametrize(("rule", "loss_id"), list(RULE_STARTS))
@pytest.mark.parametrize("n_epochs", [50, 90, 200, 240])
def test_schedule_rule_phase_starts(rule, loss_id, n_epochs):
    loss = make_loss(loss_id, rule=rule)
    starts = RULE_STARTS[rule, loss_id][n_epochs]
    assert loss.phase_starts(n_epochs) == starts
    Fs = [0.0, 0.5] if loss_id == "ce_el_0_05" else F_PHASES
    for phase, start in enumerate(starts):  # the loss value switches exactly at each start
        a, b = alpha_beta(Fs[phase])
        assert _phase_of_epoch(loss, start, n_epochs) == (round(a, 9), round(b, 9))
        if phase:
            a, b = alpha_beta(Fs[phase - 1])
            assert _phase_of_epoch(loss, start - 1, n_epochs) == (round(a, 9), round(b, 9))


def test_paper_rule_last_five_percent_and_equal_phases():
    assert make_loss("ce_el_0_05", rule="paper").phase(228 / 240) == 1
    assert make_loss("ce_el_0_05", rule="paper").phase(227 / 240) == 0  # 12 = 5 % of 240
    starts = make_loss("ce_el_0to05", rule="paper").phase_starts(240) + [240]
    assert {b - a for a, b in zip(starts[:-1], starts[1:], strict=True)} == {40}  # 1/6 each


@pytest.mark.parametrize("loss_id", ["ce_el_0_05", "ce_el_0to05"])
def test_default_rule_is_official(loss_id):
    default, official = make_loss(loss_id), make_loss(loss_id, rule="official")
    assert default.starts == official.starts and default.rule == "official"
    assert "rule='paper'" in repr(make_loss(loss_id, rule="paper"))
    with pytest.raises(LossbenchError, match="'rule'.*'official', 'paper'.*'papr'"):
        make_loss(loss_id, rule="papr")
    with pytest.raises(LossbenchError, match="unknown parameter 'rule'"):
        make_loss("ce_el_0", rule="paper")


def test_general_ce_el_schedule():
    loss = make_loss("ce_el", F=[0.0, 0.25], boundaries=[0.0, 0.5])
    assert _phase_of_epoch(loss, 24) == (1.0, 1.0)
    assert _phase_of_epoch(loss, 25) == (1.0, 2.0)
    assert make_loss("ce_el", F=[0.0, 0.1, 0.5]).phase_starts(30) == [0, 10, 20]
    assert make_loss("ce_el", F=0.2).phase_starts(10) == [0]


@pytest.mark.parametrize("progress", [-0.01, 1.01, float("nan"), float("inf"), True, "0.5"])
def test_progress_outside_unit_interval_errors(progress):
    z, t = two_class_logits(torch.tensor([0.5]))
    loss = make_loss("ce_el_0to05")
    with pytest.raises(LossbenchError, match="progress"):
        loss(z, t, progress)
    with pytest.raises(LossbenchError, match="progress"):
        loss.grad_logits(z, t, progress)


@pytest.mark.parametrize("loss_id", UCI_IDS)
def test_stack_equals_loop_over_models(loss_id):
    loss = make_loss(loss_id)
    logits = torch.randn(5, 8, 3)  # float32, as the engine uses
    target = torch.randint(0, 3, (5, 8))
    stacked = loss(logits, target, 0.9)
    grad = loss.grad_logits(logits, target, 0.9)
    for g in range(5):
        assert torch.equal(stacked[g], loss(logits[g], target[g], 0.9))
        torch.testing.assert_close(grad[g], loss.grad_logits(logits[g], target[g], 0.9),
                                   rtol=0, atol=0)


def test_expanded_target_and_strided_logits():
    """The engine passes a view of a bigger stack and an expanded target."""
    big = torch.randn(2, 3, 4, 6, 5)
    logits = big[:, 1]  # non-contiguous [2, 4, 6, 5]
    target = torch.randint(0, 5, (2, 1, 6)).expand(2, 4, 6)
    for i in UCI_IDS:
        loss = make_loss(i)
        v, g = loss.value_and_grad(logits, target, 0.5)
        torch.testing.assert_close(v, loss(logits.contiguous(), target.contiguous(), 0.5))
        torch.testing.assert_close(g, loss.grad_logits(logits.contiguous(),
                                                       target.contiguous(), 0.5))


def test_no_clamping_extreme_logits():
    """Confidently wrong samples keep a finite loss and a non-zero gradient (no p clamp)."""
    logits = torch.tensor([[0.0, 200.0], [300.0, -300.0]], dtype=torch.float64)
    target = torch.tensor([0, 0])
    for i in UCI_IDS:
        loss = make_loss(i)
        v, g = loss.value_and_grad(logits, target)
        assert bool(torch.isfinite(v).all() and torch.isfinite(g).all()), i
    assert make_loss("ce")(logits, target)[0].item() == pytest.approx(200.0)
    assert make_loss("ce").grad_logits(logits, target)[0, 0].item() == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("params", "match"),
    [({"F": [0.6]}, "'F'"), ({"F": [0.0, 0.1], "boundaries": [0.0]}, "'boundaries'"),
     ({"F": [0.0, 0.1], "boundaries": [0.1, 0.5]}, "'boundaries'"),
     ({"F": [0.0, 0.1], "boundaries": [0.0, 1.5]}, "'boundaries'"), ({"F": []}, "'F'"),
     ({"F": "abc"}, "'F'"), ({"gamma": 2}, "unknown parameter 'gamma'")],
)
def test_bad_ce_el_parameters(params, match):
    with pytest.raises(LossbenchError, match=match):
        make_loss("ce_el", **params)


def test_bad_focal_parameters():
    with pytest.raises(LossbenchError, match="'gamma'"):
        make_loss("focal", gamma=-1.0)
    with pytest.raises(LossbenchError, match="'alpha'"):
        make_loss("focal", alpha="x")
