"""Two-scale losses against the paper (Berlyand, Creese & Jabin 2021): closed forms vs
autograd (eq. 15 for R2), homogeneity (eq. 8) and R (eq. 9), the raw margin of eq. 13, the
one-scale baseline (Sec. 3.2), and training with the torch trainer on real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.data import ArrayDataset, get_dataset
from bench.losses import make_loss
from bench.losses._two_scale import margin_of, parameter_scale
from bench.spec import RunSpec
from bench.train import fit_torch

VARIANTS = ["two_scale", "two_scale_fixed", "two_scale_sep", "one_scale"]
QUIET = {"log": lambda msg: None}


def _inputs(shape=(40,), C=5, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(*shape, C, generator=g, dtype=torch.float64)
    return logits, torch.randint(0, C, shape, generator=g)


def _scales(loss, R0):
    return {k: v.to(torch.float64).detach().requires_grad_(v.requires_grad)
            for k, v in loss.init_scales(R0).items()}


# -- closed forms -------------------------------------------------------------------------------
@pytest.mark.parametrize("loss_id", VARIANTS)
@pytest.mark.parametrize("margin", ["raw", "normalised"])
@pytest.mark.parametrize("shape", [(40,), (3, 20)])
def test_closed_form_gradients_equal_autograd(loss_id, margin, shape):
    """d/dlogits per sample, d/dscale and d/dR summed: both branches of eq. 13 present."""
    params = {} if loss_id == "one_scale" else {"margin": margin, "eta": 1.0}
    loss = make_loss(loss_id, **params)
    logits, target = _inputs(shape)
    R = torch.full(shape[:-1] + (1,), 1.7, dtype=torch.float64) if len(shape) > 1 else \
        torch.tensor(1.7, dtype=torch.float64)
    scales = _scales(loss, R)
    with torch.no_grad():  # move the scales off their init so every factor matters
        for v in scales.values():
            v.mul_(1.3)
    if loss_id != "one_scale":
        delta = margin_of(logits, target) / (R if margin == "normalised" else 1.0)
        assert bool((delta < 1.0).any()) and bool((delta >= 1.0).any())
    z = logits.clone().requires_grad_(True)
    Rg = R.clone().requires_grad_(True)
    loss(z, target, scales=scales, weight_norm=Rg).sum().backward()
    closed = loss.closed_form_grads(logits, target, scales=scales, weight_norm=R)
    torch.testing.assert_close(closed["logits"], z.grad)
    if loss_id == "two_scale_sep":  # c = R or R_s R: R cancels exactly, not up to rounding
        assert Rg.grad is None and bool((closed["weight_norm"] == 0).all())
    else:
        torch.testing.assert_close(closed["weight_norm"].sum(), Rg.grad.sum())
    trainable = [k for k, v in scales.items() if v.requires_grad]
    assert sorted(set(closed) - {"logits", "weight_norm"}) == sorted(trainable)
    for name in trainable:
        torch.testing.assert_close(closed[name].sum(), scales[name].grad.sum())


def test_eq15_dl_dr2_is_the_papers_formula_and_non_positive():
    loss = make_loss("two_scale")
    logits, target = _inputs((200,))
    R = 2.5
    scales = _scales(loss, R)
    grads = loss.closed_form_grads(logits, target, scales=scales, weight_norm=R)
    well = margin_of(logits, target) >= loss.eta  # the R2 branch of eq. 13
    assert 20 < int(well.sum()) < 180
    # eq. 15 written out: d_i = X̂_i - X̂_y, sum over i != y
    x = logits / R
    d = x - x.gather(-1, target[:, None])
    e = torch.exp(scales["R2"].detach() * d).scatter(-1, target[:, None], 0.0)
    d = d.scatter(-1, target[:, None], 0.0)
    eq15 = (d * e).sum(-1) / (1 + e.sum(-1))
    torch.testing.assert_close(grads["R2"][well], eq15[well])
    assert bool((grads["R2"][well] < 0).all())  # "negative for every well classified object"
    assert bool((grads["R2"][~well] == 0).all())  # R2 unused there
    # R_s (eq. 18): the paper calls dL/dR_s "non-negative", but its conclusion (R_s grows,
    # the scales separate) needs dL/dR_s <= 0, which is what holds
    sep = make_loss("two_scale_sep")
    g = sep.closed_form_grads(logits, target, scales=_scales(sep, R), weight_norm=R)["Rs"]
    assert bool((g[well] < 0).all()) and bool((g[~well] == 0).all())


# -- R (eq. 9) and homogeneity (eq. 8) ----------------------------------------------------------
def _relu_net(bias: bool, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8, bias=bias), nn.ReLU(), nn.Linear(8, 7, bias=bias),
                         nn.ReLU(), nn.Linear(7, 4, bias=bias)).double()


def _scaled(net: nn.Sequential, factors) -> nn.Sequential:
    copy = _relu_net(bias=net[0].bias is not None)
    copy.load_state_dict(net.state_dict())
    with torch.no_grad():
        for layer, lam in zip([copy[0], copy[2], copy[4]], factors, strict=True):
            for p in layer.parameters():
                p.mul_(lam)
    return copy


def test_homogeneity_eq8_and_r_eq9_on_a_bias_free_relu_net():
    net = _relu_net(bias=False)
    x = torch.randn(10, 6, dtype=torch.float64)
    # uniform scaling: X(λα) = λ^(M-1) X(α), here M - 1 = 3 layers; per layer: the product
    torch.testing.assert_close(_scaled(net, [2.0] * 3)(x), 8.0 * net(x))
    torch.testing.assert_close(_scaled(net, [2.0, 0.5, 3.0])(x), 3.0 * net(x))
    R = parameter_scale(net).detach()
    other = parameter_scale(_scaled(net, [2.0, 0.5, 3.0])).detach()
    assert float(other) == pytest.approx(3 * float(R))
    want = np.prod([float(net[i].weight.detach().norm()) for i in (0, 2, 4)])
    assert float(R) == pytest.approx(want)
    # so X̂ = z / R, and the two-scale loss with given scales, depend on the direction only
    loss = make_loss("two_scale")
    target = torch.randint(0, 4, (10,))
    scales = _scales(loss, 1.0)
    for factors in ([2.0] * 3, [2.0, 0.5, 3.0]):
        other = _scaled(net, factors)
        torch.testing.assert_close(
            loss(other(x), target, scales=scales, weight_norm=parameter_scale(other)),
            loss(net(x), target, scales=scales, weight_norm=R))
    # with biases eq. 8 fails: the paper's nets (eq. 1) have none
    biased = _relu_net(bias=True)
    assert not torch.allclose(_scaled(biased, [2.0] * 3)(x), 8.0 * biased(x))


@pytest.mark.parametrize("r_grad", [True, False])
def test_gradient_through_r_leaves_each_layer_norm_alone(r_grad):
    """Eq. 14 differentiates L(X̂(α)): with the gradient through R (default) it is
    orthogonal to every layer's weights (<W, dL/dW> = 0); treating R as a constant is not."""
    net = _relu_net(bias=False)
    x, target = torch.randn(30, 6, dtype=torch.float64), torch.randint(0, 4, (30,))
    loss = make_loss("two_scale", r_grad=r_grad)
    loss.bind(net)
    loss.per_sample(net(x), target, **loss.step_inputs(net, torch.arange(30))).sum().backward()
    radial = [float((net[i].weight.detach() * net[i].weight.grad).sum()) for i in (0, 2, 4)]
    scale = max(float(net[i].weight.grad.norm()) for i in (0, 2, 4))
    if r_grad:
        assert max(abs(r) for r in radial) < 1e-12 * max(scale, 1.0)
    else:
        assert max(abs(r) for r in radial) > 1e-3 * scale


def test_r_takes_every_layer_with_its_bias_and_skips_normalisation_layers():
    torch.manual_seed(0)
    conv, fc = nn.Conv2d(1, 3, 3), nn.Linear(12, 5)
    net = nn.Sequential(conv, nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), fc)
    net.requires_grad_(False)
    net[1].weight.fill_(3.0)  # BatchNorm: not a layer of eq. 1, must not enter R
    full = [torch.cat([m.weight.flatten(), m.bias]).norm() for m in (conv, fc)]
    assert float(parameter_scale(net)) == pytest.approx(float(full[0] * full[1]))
    bare = float(conv.weight.norm() * fc.weight.norm())
    assert float(parameter_scale(net, biases=False)) == pytest.approx(bare)
    assert float(parameter_scale(net)) > bare
    loss = make_loss("two_scale", r_biases=False)
    loss.bind(net)
    assert float(loss.state_dict()["scales"]["R1"]) == pytest.approx(bare)


# -- the margin of eq. 13, the baseline, test-time scale ----------------------------------------
def test_raw_and_normalised_margins_split_differently():
    """δX = 0.5 with R = 100: raw (eq. 13) is >= η = 0.01 (scale R2), normalised δX / R =
    0.005 is < η (scale R1)."""
    z, t = torch.tensor([[1.5, 1.0, -2.0]], dtype=torch.float64), torch.tensor([0])
    R = 100.0
    raw, norm = make_loss("two_scale"), make_loss("two_scale", margin="normalised")
    scales = _scales(raw, R)
    on = {c: -torch.log_softmax(c * z / R, -1)[0, 0] for c in (R, 10 * R)}
    assert raw(z, t, scales=scales, weight_norm=R).item() == pytest.approx(on[10 * R].item())
    assert norm(z, t, scales=scales, weight_norm=R).item() == pytest.approx(on[R].item())
    # the paper's η = 10 (Sec. 3.3): raw margins of 25 still reach the R2 branch; normalised
    # (δX / R = 0.25) none does, and the loss is the one-scale baseline
    logits, target = _inputs((30,), scale=20.0)
    raw, norm = (make_loss("two_scale", eta=10.0, margin=m) for m in ("raw", "normalised"))
    base = make_loss("one_scale")
    v_raw, v_norm = (f(logits, target, scales=scales, weight_norm=R) for f in (raw, norm))
    v_one = base(logits, target, scales={"R1": scales["R1"]}, weight_norm=R)
    assert bool((margin_of(logits, target) >= 10.0).any())
    torch.testing.assert_close(v_norm, v_one)
    assert not torch.allclose(v_raw, v_one)


def test_large_eta_two_scale_is_the_one_scale_baseline():
    logits, target = _inputs((50,), scale=20.0)
    two, one = make_loss("two_scale", eta=1e6), make_loss("one_scale")
    s2, s1 = _scales(two, 3.0), _scales(one, 3.0)
    v2, v1 = two(logits, target, scales=s2, weight_norm=3.0), one(logits, target, scales=s1,
                                                                   weight_norm=3.0)
    torch.testing.assert_close(v2, v1)
    v2.sum().backward()
    v1.sum().backward()
    torch.testing.assert_close(s2["R1"].grad, s1["R1"].grad)
    assert s2["R2"].grad.item() == 0.0
    # and CE on R1 X̂ with R1 = R is CE on the logits
    torch.testing.assert_close(v1, -torch.log_softmax(logits, -1).gather(-1, target[:, None])
                               .squeeze(-1))


def test_test_time_scale_is_r1_or_r_for_sep():
    net = _relu_net(bias=True)
    x = torch.randn(5, 6, dtype=torch.float64)
    for loss_id in VARIANTS:
        loss = make_loss(loss_id)
        loss.bind(net)
        with torch.no_grad():
            for v in loss.parameters():
                v.mul_(2.0)
            z = net(x)
            got = loss.eval_logits(z, net)
        want = z if loss_id == "two_scale_sep" else \
            loss.state_dict()["scales"]["R1"] * z / parameter_scale(net)
        torch.testing.assert_close(got, want.to(got.dtype))


# -- the torch trainer --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    ds = get_dataset("digits")
    return ds, ds.splits("random")[0]


@pytest.mark.slow
def test_torch_trainer_trains_every_variant_on_digits(digits):
    ds, split = digits
    base = RunSpec(dataset="digits", protocol="random", model="mlp", epochs=3, batch_size=32,
                   lr=0.05, device="cpu", progress=False)
    out = {i: fit_torch(base.replace(loss=i), ds, split, **QUIET) for i in VARIANTS}
    out["ce"] = fit_torch(base, ds, split, **QUIET)
    for loss_id, arrays in out.items():
        assert not arrays["diverged"].any(), loss_id
        assert arrays["test_acc"][-1] > 0.7, (loss_id, arrays["test_acc"])  # chance: 0.1
    # every variant trains differently from plain CE (one_scale too: R1 is trained)
    for loss_id in VARIANTS:
        assert not np.array_equal(out[loss_id]["train_loss"], out["ce"]["train_loss"]), loss_id


def test_trainer_large_eta_equals_one_scale(digits):
    ds, split = digits
    base = RunSpec(dataset="digits", protocol="random", model="linear", epochs=2,
                   batch_size=64, lr=0.05, device="cpu", progress=False)
    two = fit_torch(base.replace(loss="two_scale", loss_params={"eta": 1e6}), ds, split, **QUIET)
    one = fit_torch(base.replace(loss="one_scale"), ds, split, **QUIET)
    for key in one:
        np.testing.assert_array_equal(two[key], one[key], err_msg=key)


@pytest.mark.parametrize("loss_id", VARIANTS)
def test_scales_are_trained_and_survive_a_checkpoint(loss_id, tmp_path):
    from bench.train.torch_trainer import Run, _context, make_data

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    ds, split = ArrayDataset("toy", X, y, 3), (np.arange(40), np.arange(40, 50),
                                               np.arange(50, 60))
    spec = RunSpec(dataset="toy", model="mlp", loss=loss_id, epochs=2, batch_size=8, lr=0.1,
                   device="cpu", progress=False)
    run = Run(spec, ds, make_data(ds, split, torch.device("cpu")), torch.device("cpu"), None,
              print)
    before = run.loss.state_dict()["scales"]
    ctx = _context(run, ds, split, None, print)
    run.train_epoch(0, ctx)
    after = run.loss.state_dict()["scales"]
    for name, value in after.items():
        moved = not torch.equal(value, before[name])
        assert moved == (loss_id != "two_scale_fixed"), name
    path = tmp_path / "state.pt"
    torch.save(run.state_dict(), path)
    fresh = Run(spec, ds, make_data(ds, split, torch.device("cpu")), torch.device("cpu"), None,
                print)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    for name, value in fresh.loss.state_dict()["scales"].items():
        torch.testing.assert_close(value, after[name], rtol=0, atol=0)
    held = fresh.optimizers[0].param_groups[0]["params"]
    assert all(any(t is p for p in held) for t in fresh.loss.parameters())


def test_a_diverging_run_is_reported_not_raised():
    """The engine path does not check R: weights gone NaN mid-epoch end the run as diverged
    (the trainer's rule), also with per-step batch metrics (eval_every)."""
    rng = np.random.default_rng(0)
    X = 100 * rng.normal(size=(45, 5)).astype(np.float32)
    ds, idx = ArrayDataset("toy", X, (X[:, 0] > 0).astype(np.int64), 2), np.arange(45)
    spec = RunSpec(dataset="toy", model="mlp", loss="two_scale_sep", lr=1e3, epochs=3,
                   batch_size=4, eval_every=3, device="cpu", progress=False)
    out = fit_torch(spec, ds, (idx[:25], idx[25:35], idx[35:]), **QUIET)
    assert out["diverged"].all() and np.isnan(out["test_acc"]).all()
