"""Two-scale losses and the baselines (COT, MPCE, CE-gradnorm)."""

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


def test_ce_gradnorm_multiplier():
    loss = make_loss("ce_gradnorm")
    assert loss.needs == frozenset({"lr_multiplier"})
    # V_ce = int (1 - p) = 1/2; V_mix = int (1 + p)(1 - p) = 2/3 -> M = 4/3 (eqs. 20-22)
    assert loss.lr_multiplier == pytest.approx(4 / 3, rel=1e-12)
    b = 1 / (1 - 2 * 0.3)
    m = make_loss("ce_gradnorm", alpha=1.0, beta=b).lr_multiplier
    assert m == pytest.approx((1 + (b - 1) / 2 - b / 3) / 0.5, rel=1e-12)  # int (1+bp)(1-p)
    logits, target = rand_inputs()
    torch.testing.assert_close(loss(logits, target), make_loss("ce")(logits, target))
    with pytest.raises(LossbenchError, match="alpha and beta"):
        make_loss("ce_gradnorm", alpha=0.0, beta=0.0)
