"""MAE, Lq, truncated Lq (GCE paper) and forward correction (Patrini et al.)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.errors import LossbenchError
from bench.losses import make_loss
from bench.losses._noisy import estimate_transition_matrix


def rand_inputs(shape=(4, 6), C=5, scale=3.0):
    logits = scale * torch.randn(*shape, C, dtype=torch.float64)
    return logits, torch.randint(0, C, shape)


def autograd_grad(loss, logits, target, progress=0.0, **extra):
    z = logits.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(z, target, progress, **extra).sum(), z)
    return g


def test_values_at_hand_computed_point():
    z = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # p_1 = 0.75
    t = torch.tensor([1])
    assert make_loss("mae")(z, t).item() == pytest.approx(0.5, rel=1e-12)
    assert make_loss("gce")(z, t).item() == pytest.approx((1 - 0.75**0.7) / 0.7, rel=1e-12)
    assert make_loss("gce", q=0.5)(z, t).item() == pytest.approx(2 * (1 - 0.75**0.5), rel=1e-12)
    tg = make_loss("trunc_gce")
    lq_k = (1 - 0.5**0.7) / 0.7
    assert tg(z, t).item() == pytest.approx((1 - 0.75**0.7) / 0.7, rel=1e-12)
    w0 = torch.zeros(1, dtype=torch.float64)
    assert tg(z, t, sample_weights=w0).item() == pytest.approx(lq_k, rel=1e-12)


@pytest.mark.parametrize("loss_id", ["mae", "gce", "trunc_gce"])
def test_closed_form_gradient_equals_autograd(loss_id):
    loss = make_loss(loss_id)
    logits, target = rand_inputs()
    torch.testing.assert_close(loss.grad_logits(logits, target),
                               autograd_grad(loss, logits, target), rtol=1e-10, atol=1e-12)


def test_lq_gradient_is_p_pow_q_times_ce_gradient():
    logits, target = rand_inputs((40,), C=4)
    p_y = torch.softmax(logits, -1).gather(-1, target[:, None])
    g_ce = autograd_grad(make_loss("ce"), logits, target)
    for q in (0.2, 0.7, 1.0):
        g = autograd_grad(make_loss("gce", q=q), logits, target)
        torch.testing.assert_close(g, p_y**q * g_ce, rtol=1e-10, atol=1e-13)


def test_lq_limits():
    logits, target = rand_inputs((30,), C=4)
    ce = make_loss("ce")(logits, target)
    torch.testing.assert_close(make_loss("gce", q=1e-7)(logits, target), ce,
                               rtol=1e-5, atol=1e-6)
    lq1 = make_loss("gce", q=1.0)(logits, target)
    torch.testing.assert_close(lq1, make_loss("el")(logits, target), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(lq1, make_loss("mae")(logits, target) / 2, rtol=1e-12,
                               atol=1e-14)


def test_no_clamp_keeps_gradient_of_confidently_wrong_samples():
    logits = torch.tensor([[40.0, -40.0]], dtype=torch.float64)  # p_y ~ e^-80 (< 1e-7)
    target = torch.tensor([1])
    g = make_loss("gce").grad_logits(logits, target)
    expect = math.exp(-80.0 * 0.7)  # p_y^q * |CE grad| (= 1)
    assert abs(g[0, 1].item()) == pytest.approx(expect, rel=1e-6)
    assert make_loss("gce")(logits, target).item() == pytest.approx(1 / 0.7, rel=1e-12)


def test_trunc_gce_weights_value_and_gradient():
    loss = make_loss("trunc_gce")
    # the paper prunes with the best-validation model so far; "current" is the other reading
    assert loss.needs == frozenset({"sample_weights", "best_model"})
    assert make_loss("trunc_gce", prune_with="current").needs == frozenset({"sample_weights"})
    z = torch.tensor([[0.0, math.log(3.0)], [0.0, -math.log(3.0)]], dtype=torch.float64)
    t = torch.tensor([1, 1])  # p_y = 0.75 and 0.25
    w = loss.sample_weights_from(z, t)
    assert w.tolist() == [1.0, 0.0] and w.dtype == z.dtype
    v = loss(z, t, 0.5, sample_weights=w)
    lq_k = (1 - 0.5**0.7) / 0.7
    assert v.tolist() == pytest.approx([(1 - 0.75**0.7) / 0.7, lq_k], rel=1e-12)
    g = loss.grad_logits(z, t, 0.5, sample_weights=w)
    assert g[1].abs().max().item() == 0.0  # pruned sample: constant loss, no gradient
    logits, target = rand_inputs((3, 8))
    w = (torch.rand(3, 8) > 0.5).double()
    torch.testing.assert_close(loss.grad_logits(logits, target, 0.3, sample_weights=w),
                               autograd_grad(loss, logits, target, 0.3, sample_weights=w),
                               rtol=1e-10, atol=1e-12)
    v, g = loss.value_and_grad(logits, target, 0.3, sample_weights=w[0])  # broadcast [B]
    assert v.shape == (3, 8) and g.shape == logits.shape


def test_trunc_gce_prune_epochs():
    loss = make_loss("trunc_gce")
    assert loss.prune_epochs(120) == [40, 50, 60, 70, 80, 90, 100, 110]
    assert loss.prune_epochs(50) == [17, 21, 25, 29, 33, 38, 42, 46]
    assert make_loss("trunc_gce", prune_start=0.5, prune_every=0.25).prune_epochs(8) == [4, 6]
    # whole numbers are epochs: CIFAR-100's schedule (from 80 every 10 of 150)
    assert make_loss("trunc_gce", prune_start=80, prune_every=10).prune_epochs(150) == \
        [80, 90, 100, 110, 120, 130, 140]
    assert make_loss("trunc_gce", prune_start=40, prune_every=10).prune_epochs(120) == \
        make_loss("trunc_gce").prune_epochs(120)
    for bad in ({"prune_start": 2.5}, {"prune_every": 0}, {"prune_with": "last"}):
        with pytest.raises(LossbenchError, match="trunc_gce"):
            make_loss("trunc_gce", **bad)


def test_trunc_gce_bad_weights():
    loss = make_loss("trunc_gce")
    logits, target = rand_inputs((2, 3))
    with pytest.raises(LossbenchError, match="sample_weights shape"):
        loss(logits, target, sample_weights=torch.ones(4, dtype=torch.float64))
    with pytest.raises(LossbenchError, match=r"\[0, 1\]"):
        loss(logits, target, sample_weights=torch.full((2, 3), 2.0, dtype=torch.float64))
    with pytest.raises(LossbenchError, match="sample_weights"):
        loss(logits, target, weights=torch.ones(2, 3))
    with pytest.raises(LossbenchError, match="'k'"):
        make_loss("trunc_gce", k=1.0)


def test_forward_with_a_stack_of_matrices_is_each_matrix_on_its_slice():
    """The stacked engine gives forward one T per seed: [S, 1, C, C] against [S, R, b, C]."""
    torch.manual_seed(0)
    Ts = torch.softmax(torch.randn(2, 4, 4, dtype=torch.float64) * 2, -1)
    logits = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 5))
    stacked = make_loss("forward", T=Ts[:, None])
    values, grad = stacked.value_and_grad_unchecked(logits, target)
    for s in range(2):
        one = make_loss("forward", T=Ts[s])
        torch.testing.assert_close(values[s], one.per_sample(logits[s], target[s]))
        torch.testing.assert_close(grad[s], one.grad_unchecked(logits[s], target[s]))
    with pytest.raises(LossbenchError, match="broadcast"):
        stacked(torch.randn(3, 3, 5, 4, dtype=torch.float64), torch.randint(0, 4, (3, 3, 5)))


def test_forward_identity_equals_ce():
    logits, target = rand_inputs()
    loss = make_loss("forward", T=torch.eye(5))
    assert loss.needs == frozenset()
    torch.testing.assert_close(loss(logits, target), make_loss("ce")(logits, target),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss.grad_logits(logits, target),
                               make_loss("ce").grad_logits(logits, target), rtol=1e-12,
                               atol=1e-12)


def test_forward_value_and_gradient():
    T = torch.tensor([[0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 0.3, 0.7]], dtype=torch.float64)
    loss = make_loss("forward", T=T)
    logits, target = rand_inputs((6, 7), C=3)
    p = torch.softmax(logits, -1)
    expect = -torch.log((p @ T).gather(-1, target[..., None]).squeeze(-1))
    torch.testing.assert_close(loss(logits, target), expect, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss.grad_logits(logits, target),
                               autograd_grad(loss, logits, target), rtol=1e-10, atol=1e-12)
    v, g = loss.value_and_grad(logits, target)
    torch.testing.assert_close(v, expect, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, loss.grad_logits(logits, target), rtol=1e-12, atol=1e-14)


def test_forward_estimated_transition():
    loss = make_loss("forward")
    assert loss.needs == frozenset({"transition_matrix"})
    logits, target = rand_inputs((5,), C=3)
    with pytest.raises(LossbenchError, match="set_transition"):
        loss(logits, target)
    # anchors: sample i*10 + 9 is the most confident for class i; with percentile=100 the
    # estimate is exactly those rows
    probs = torch.full((30, 3), 1 / 3, dtype=torch.float64)
    anchors = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.0, 0.4, 0.6]],
                           dtype=torch.float64)
    for i in range(3):
        probs[i * 10 + 9] = anchors[i]
    torch.testing.assert_close(estimate_transition_matrix(probs, percentile=100.0), anchors)
    # at the 97th percentile the top outlier per class is skipped
    rng = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(200, 3, generator=rng, dtype=torch.float64), -1)
    T_hat = estimate_transition_matrix(probs)
    torch.testing.assert_close(T_hat.sum(1), torch.ones(3, dtype=torch.float64))
    for i in range(3):
        col = probs[:, i]
        thresh = torch.quantile(col, 0.97, interpolation="higher")
        best = torch.where(col >= thresh, 0.0, col).argmax()
        torch.testing.assert_close(T_hat[i], probs[best] / probs[best].sum())
    loss.set_transition(T_hat)
    assert bool(torch.isfinite(loss(logits, target)).all())


@pytest.mark.parametrize(
    "T", [[[0.5, 0.6], [0.5, 0.5]], [[1.0, 0.0], [1.0, 0.0]], [[1.0]], [[-0.5, 1.5], [0, 1]]])
def test_forward_bad_matrix(T):
    with pytest.raises(LossbenchError, match="forward"):
        make_loss("forward", T=T)


def test_forward_class_count_mismatch():
    loss = make_loss("forward", T=torch.eye(3))
    logits, target = rand_inputs((4,), C=5)
    with pytest.raises(LossbenchError, match="C = 5"):
        loss(logits, target % 3)
