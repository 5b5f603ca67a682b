"""Two-scale losses and the baselines (COT, MPCE, tamed CE, CE-gradnorm)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.errors import LossbenchError
from bench.losses import make_loss


def rand_inputs(shape=(4, 6), C=5, scale=3.0):
    logits = scale * torch.randn(*shape, C, dtype=torch.float64)
    return logits, torch.randint(0, C, shape)


def autograd_grad(loss, logits, target, progress=0.0):
    z = logits.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(z, target, progress).sum(), z)
    return g


# -- two-scale ------------------------------------------------------------------------------
def test_two_scale_value_at_hand_computed_point():
    loss = make_loss("two_scale")
    R = 2.0
    scales = loss.init_scales(R)
    assert scales["R1"].item() == 2.0 and scales["R2"].item() == 20.0
    z = torch.tensor([[1.0, 3.0], [3.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([0, 0])  # raw margins δX (eq. 13): -2 (< eta) and +2 (>= eta)
    v = loss(z, t, 0.0, scales=scales, weight_norm=R)
    x = z / R
    expect0 = -torch.log_softmax(2.0 * x[0], -1)[0]   # R1 = 2
    expect1 = -torch.log_softmax(20.0 * x[1], -1)[0]  # R2 = 20
    assert v[0].item() == pytest.approx(expect0.item(), rel=1e-6)
    assert v[1].item() == pytest.approx(expect1.item(), rel=1e-6)
    assert v[1].item() == pytest.approx(math.log1p(math.exp(-20.0)), rel=1e-5)


def test_two_scale_gradient_flows_to_scales_and_logits():
    loss = make_loss("two_scale")
    assert loss.needs == frozenset({"scale_params", "weight_norm"})
    scales = loss.init_scales(1.5)
    assert scales["R1"].requires_grad and scales["R2"].requires_grad
    assert scales["R1"].is_leaf and scales["R2"].is_leaf
    z = torch.tensor([[0.0, 1.0], [2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 0])  # one small-margin, one large-margin sample
    loss(z, t, 0.0, scales=scales, weight_norm=1.5).sum().backward()
    assert scales["R1"].grad is not None and scales["R1"].grad.item() != 0.0
    assert scales["R2"].grad is not None and scales["R2"].grad.item() != 0.0
    assert z.grad is not None and bool((z.grad != 0).all())


def test_two_scale_fixed_and_sep():
    fixed = make_loss("two_scale_fixed")
    s = fixed.init_scales(3.0)
    assert not s["R1"].requires_grad and not s["R2"].requires_grad
    sep = make_loss("two_scale_sep")
    s = sep.init_scales(3.0)
    assert set(s) == {"Rs"} and s["Rs"].requires_grad and s["Rs"].item() == 10.0  # a ratio
    z = torch.tensor([[0.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0, 0])
    v = sep(z, t, 0.0, scales=s, weight_norm=3.0)
    # small margin: raw logits (R X̂ = z); large margin: Rs R X̂ = 10 z (eq. 17)
    assert v[0].item() == pytest.approx(-torch.log_softmax(z[0], -1)[0].item(), rel=1e-6)
    assert v[1].item() == pytest.approx(-torch.log_softmax(10 * z[1], -1)[0].item(), rel=1e-6)
    v.sum().backward()
    assert s["Rs"].grad is not None
    torch.testing.assert_close(sep.eval_logits(z, s, 3.0), z)


def test_two_scale_eval_logits_and_stack():
    loss = make_loss("two_scale")
    R = torch.tensor([[1.0], [2.0], [4.0]])  # one R per stacked model, [G, 1]
    scales = loss.init_scales(R)
    with torch.no_grad():
        scales["R1"].mul_(3.0)
    logits, target = rand_inputs((3, 5), C=4)
    torch.testing.assert_close(loss.eval_logits(logits, scales, R), 3.0 * logits)
    stacked = loss(logits, target, 0.2, scales=scales, weight_norm=R)
    for g in range(3):
        single = loss(logits[g], target[g], 0.2, weight_norm=R[g, 0].item(),
                      scales={k: v[g, 0] for k, v in scales.items()})
        torch.testing.assert_close(stacked[g], single)


def test_two_scale_missing_inputs():
    loss = make_loss("two_scale")
    logits, target = rand_inputs()
    with pytest.raises(LossbenchError, match="init_scales"):
        loss(logits, target)
    with pytest.raises(LossbenchError, match="init_scales"):
        loss(logits, target, scales=loss.init_scales(1.0))
    with pytest.raises(LossbenchError, match="weight_norm"):
        loss(logits, target, scales=loss.init_scales(1.0), weight_norm=-1.0)
    with pytest.raises(LossbenchError, match="scales must be a dict"):
        loss(logits, target, scales={"R1": torch.tensor(1.0)}, weight_norm=1.0)


# -- baselines -------------------------------------------------------------------------------
def test_cot_primary_is_ce_and_complement_entropy():
    loss = make_loss("cot")
    assert loss.needs == frozenset({"complement_pass"})
    logits, target = rand_inputs()
    torch.testing.assert_close(loss(logits, target), make_loss("ce")(logits, target))
    torch.testing.assert_close(loss.grad_logits(logits, target),
                               make_loss("ce").grad_logits(logits, target))
    # hand-computed: p = (0.5, 0.3, 0.2), y = 0 -> P = (0.6, 0.4), value = sum P log P / 3
    z = torch.log(torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64))
    v = loss.complement(z, torch.tensor([0]))
    assert v.item() == pytest.approx((0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / 3, rel=1e-12)
    # minimum (max entropy) when the non-target classes are uniform, whatever p_y
    z = torch.tensor([[5.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    assert loss.complement(z, torch.tensor([0])).item() == pytest.approx(-math.log(3) / 4)
    # differentiable, finite for extreme logits, independent of the target logit
    z = torch.tensor([[300.0, -300.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss.complement(z, torch.tensor([0])).sum().backward()
    assert bool(torch.isfinite(z.grad).all()) and z.grad[0, 0].item() == 0.0


def test_mpce_value_and_gradient():
    loss = make_loss("mpce")
    z = torch.log(torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64))
    assert loss(z, torch.tensor([1])).item() == pytest.approx(-(0.5 - 0.3) * math.log(0.3))
    assert loss(z, torch.tensor([0])).item() == 0.0
    logits, target = rand_inputs((5, 9))
    torch.testing.assert_close(loss.grad_logits(logits, target),
                               autograd_grad(loss, logits, target), rtol=1e-10, atol=1e-12)


# -- tamed CE (mixing paper eq. 4, Martinez & Stiefelhagen 2018) ------------------------------
def test_tce_alpha_zero_is_ce_and_value_at_a_point():
    logits, target = rand_inputs((5, 7))
    torch.testing.assert_close(make_loss("tce", alpha=0.0)(logits, target),
                               make_loss("ce")(logits, target), rtol=1e-12, atol=1e-12)
    z = torch.log(torch.tensor([[0.2, 0.3, 0.5]], dtype=torch.float64))
    s = math.log(0.3)
    for alpha in (0.5, 2.0):
        expected = ((1 - s) ** (1 - alpha) - 1) / (1 - alpha)
        assert make_loss("tce", alpha=alpha)(z, torch.tensor([1])).item() == pytest.approx(
            expected, rel=1e-12)
    assert make_loss("tce", alpha=1.0)(z, torch.tensor([1])).item() == pytest.approx(
        math.log(1 - s), rel=1e-12)  # the alpha -> 1 limit
    assert make_loss("tce")(torch.tensor([[50.0, 0.0]], dtype=torch.float64),
                            torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0, 2.5])
def test_tce_closed_form_gradient_is_ce_gradient_damped(alpha):
    loss = make_loss("tce", alpha=alpha)
    logits, target = rand_inputs((6, 9), scale=8.0)  # includes confidently wrong samples
    g = loss.grad_logits(logits, target)
    torch.testing.assert_close(g, autograd_grad(loss, logits, target), rtol=1e-10, atol=1e-12)
    s = torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1))
    ce_grad = make_loss("ce").grad_logits(logits, target)
    torch.testing.assert_close(g, ce_grad * (1 - s) ** -alpha, rtol=1e-10, atol=1e-12)
    if alpha > 0:  # damped: never above CE's gradient, strictly below once p_y < 1
        assert bool((g.abs() <= ce_grad.abs() + 1e-15).all())


def test_tce_bad_alpha():
    with pytest.raises(LossbenchError, match=r"'alpha' parameter of make_loss\('tce'\)"):
        make_loss("tce", alpha=-0.1)


# -- ce_gradnorm: M_F = V_ab(F) / V_ce per phase (mixing paper eqs. 20-22) --------------------
def _mix_grad(alpha, beta, p_y, p_j):
    """d(alpha CE + beta EL)/dq at a point, by autograd on logits with these probabilities:
    (target logit, a non-target logit)."""
    mix = make_loss("ce_el", F=[0.0])  # any MixingLoss; its (alpha, beta) replaced below
    mix.phases = ((alpha, beta),)
    rest = 1.0 - p_y - p_j
    z = torch.log(torch.tensor([[p_y, p_j, rest]], dtype=torch.float64))
    g = autograd_grad(mix, z, torch.tensor([0]))[0]
    return float(g[0]), float(g[1])


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (1.0, 1.0), (1.0, 2.5), (0.0, 1.0)])
def test_gradient_volumes_match_quadrature_of_the_gradient(alpha, beta):
    from scipy import integrate

    from bench.losses import mix_gradient_volume

    # eq. 21: the target logit's |gradient| integrated over p_y, gradient from autograd
    on = integrate.quad(lambda p: abs(_mix_grad(alpha, beta, p, (1 - p) / 2)[0]), 0, 1)[0]
    assert mix_gradient_volume(alpha, beta, "on_target") == pytest.approx(on, rel=1e-8)
    # eq. 22: the non-target gradient p_j (alpha + beta p_y) (checked against autograd inside
    # the simplex) integrated over the unit square as the paper writes it
    rng = torch.Generator().manual_seed(0)
    for p_y, p_j in (torch.rand(8, 2, generator=rng, dtype=torch.float64) / 2).tolist():
        assert _mix_grad(alpha, beta, p_y, p_j)[1] == pytest.approx(p_j * (alpha + beta * p_y))
    off = integrate.dblquad(lambda p_j, p_y: p_j * (alpha + beta * p_y), 0, 1, 0, 1)[0]
    assert mix_gradient_volume(alpha, beta, "off_target") == pytest.approx(off, rel=1e-8)
    assert mix_gradient_volume(alpha, beta, "both") == pytest.approx(on + off, rel=1e-8)


@pytest.mark.parametrize("volume", ["on_target", "off_target", "both"])
def test_gradient_volume_quadrature_for_non_mix_losses(volume):
    from bench.losses import gradient_volume

    # Lq: coef = p^q, on target int p^q (1 - p) = 1/(q+1) - 1/(q+2), off target 1/(2 (q+1))
    q = 0.7
    on, off = 1 / (q + 1) - 1 / (q + 2), 1 / (2 * (q + 1))
    expected = {"on_target": on, "off_target": off, "both": on + off}[volume]
    assert gradient_volume(make_loss("gce", q=q), volume=volume) == pytest.approx(expected,
                                                                                rel=1e-7)
    # tce at alpha = 0 is CE: V_ce = 1/2 per area (eq. 20)
    assert gradient_volume(make_loss("tce", alpha=0.0), volume=volume) == pytest.approx(
        {"both": 1.0}.get(volume, 0.5), rel=1e-7)


def test_ce_gradnorm_factor_per_phase_of_the_schedule():
    from bench.losses import mix_gradient_volume

    loss = make_loss("ce_gradnorm")  # strategy 3 (F = 0-0.5), eq. 21
    ref = make_loss("ce_el_0to05")
    assert loss.needs == frozenset() and loss.lr_multiplier == 1.0
    assert loss.phase_starts(50) == ref.phase_starts(50) == [0, 8, 17, 25, 34, 42]
    logits, target = rand_inputs()
    ce = make_loss("ce")(logits, target)
    for epoch in range(50):
        progress = epoch / 50
        a, b = ref.alpha_beta(progress)
        m = mix_gradient_volume(a, b) / 0.5
        assert loss.factor(progress) == pytest.approx(m, rel=1e-12)
        if epoch in (0, 8, 49):
            torch.testing.assert_close(loss(logits, target, progress), m * ce)
            torch.testing.assert_close(loss.grad_logits(logits, target, progress),
                                       m * make_loss("ce").grad_logits(logits, target))
    # F = 0: (1/2 + 1/6) / (1/2) = 4/3; F = 0.5 (EL only): (1/6) / (1/2) = 1/3
    assert loss.factors[0] == pytest.approx(4 / 3) and loss.factors[-1] == pytest.approx(1 / 3)
    off = make_loss("ce_gradnorm", volume="off_target")  # alpha + beta / 2
    assert off.factors[0] == pytest.approx(1.5) and off.factors[-1] == pytest.approx(0.5)
    paper = make_loss("ce_gradnorm", rule="paper")
    assert paper.phase_starts(60) == [0, 10, 20, 30, 40, 50]


def test_ce_gradnorm_lr_option_and_errors():
    loss = make_loss("ce_gradnorm", schedule="ce_el_0", apply="lr")
    assert loss.needs == frozenset({"lr_multiplier"})
    assert loss.lr_multiplier == pytest.approx(4 / 3, rel=1e-12)
    logits, target = rand_inputs()
    torch.testing.assert_close(loss(logits, target, 0.7), make_loss("ce")(logits, target))
    with pytest.raises(LossbenchError, match="apply='lr' needs a one-phase schedule"):
        make_loss("ce_gradnorm", apply="lr")
    with pytest.raises(LossbenchError, match="'volume' parameter.*'on_target'"):
        make_loss("ce_gradnorm", volume="area")
    with pytest.raises(LossbenchError, match="'schedule' parameter"):
        make_loss("ce_gradnorm", schedule="focal")
