"""Two-scale losses in the stacked engine (bench/train/_scales.py) against the per-model torch
trainer: per-model R (eq. 9, biases in) with its gradient, trainable scales in the stack's
optimiser, the test-time scale (Sec. 3.2), η sweeps merged into one loss call, label noise,
and divergence isolation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _toy import toy_dataset

from bench.losses import make_loss
from bench.spec import RunSpec
from bench.train import StackSpec, stacked_refusal, train_specs, train_stack
from bench.train._scales import StackScales

QUIET = {"log": lambda msg: None}
# the four losses, an η sweep of two_scale (consecutive: one merged loss call) and R's
# readings other than the default (without biases; without the gradient through R)
METHODS = [("ce", {}), ("one_scale", {}), ("two_scale", {"eta": 0.01}),
           ("two_scale", {"eta": 1.0}), ("two_scale_fixed", {"eta": 0.3}),
           ("two_scale_sep", {"eta": 0.3}), ("two_scale", {"eta": 0.3, "r_biases": False}),
           ("two_scale", {"eta": 0.3, "r_grad": False})]


pytestmark = pytest.mark.usefixtures("one_thread")


def _specs(methods, noises=({},), lrs=(0.1, 0.02), **fields):
    base = {"dataset": "toy", "model": "mlp", "protocol": "random", "epochs": 5,
            "batch_size": 4, "device": "cpu", "progress": False}
    return [RunSpec(**{**base, **fields}, loss=loss, loss_params=params, lr=lr, seed=seed,
                    noise=noise)
            for seed in (0, 1) for noise in noises for loss, params in methods for lr in lrs]


def _assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, atol=1e-5) -> None:
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(a[col], b[col], atol=atol, rtol=1e-4, err_msg=col)
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col


@pytest.mark.parametrize("arch", ["linear", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stack_equals_torch_trainer(arch, optimizer):
    ds = toy_dataset()
    specs = _specs(METHODS, model=arch, optimizer=optimizer)
    stacked = train_specs(specs, ds, trainer="stacked", **QUIET)
    assert set(stacked.info["trainers"].values()) == {"stacked"}
    per_model = train_specs(specs, ds, trainer="torch", **QUIET)
    _assert_tables_equal(stacked.epochs, per_model.epochs)
    _assert_tables_equal(stacked.summary, per_model.summary)
    # the methods trained differently: the second scale, the η and R's readings all matter
    last = stacked.epochs.query("epoch == 4 and seed == 0 and lr == 0.1")
    assert last["train_loss"].round(6).nunique() == len(METHODS)


def test_noise_levels_of_one_method_share_a_call_and_equal_torch():
    ds = toy_dataset()
    specs = _specs([("ce", {}), ("two_scale", {"eta": 0.1}), ("two_scale_sep", {})],
                   noises=({}, {"kind": "uniform", "rate": 0.4}), lrs=(0.05,), epochs=4)
    stacked = train_specs(specs, ds, trainer="stacked", **QUIET)
    per_model = train_specs(specs, ds, trainer="torch", **QUIET)
    _assert_tables_equal(stacked.epochs, per_model.epochs)
    rows = stacked.summary.query("loss == 'two_scale(eta=0.1)' and seed == 0")
    assert rows["train_mean_py"].nunique() == 2  # each noise level on its own labels


def test_eta_sweep_and_same_method_slots_merge_into_one_loss():
    losses = [make_loss(i, **p) for i, p in METHODS]
    runs = [(a, z) for a, z, _, _ in StackScales(losses, 2, len(losses), 3, 4, True).runs]
    assert runs == [(1, 2), (2, 4), (4, 5), (5, 6), (6, 7), (7, 8)]
    # the merged loss is each slot's own loss on its slice (η per slot)
    sweep = [make_loss("two_scale", eta=e) for e in (0.01, 1.0, 3.0)]
    merged = sweep[0].stack_slots(sweep)
    g = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(2, 3, 4, 16, 5, generator=g)
    target = torch.randint(0, 5, (2, 3, 4, 16), generator=g)
    R = 1.0 + torch.rand(2, 3, 4, 1, generator=g)
    scales = {"R1": R * 0.9, "R2": R * 11.0}
    got = merged.per_sample(logits, target, scales=scales, weight_norm=R)
    for li, loss in enumerate(sweep):
        want = loss.per_sample(logits[:, li], target[:, li], weight_norm=R[:, li],
                               scales={k: v[:, li] for k, v in scales.items()})
        torch.testing.assert_close(got[:, li], want, rtol=0, atol=0)
    assert not torch.equal(got[:, 0], got[:, 2])  # the η differ
    assert make_loss("two_scale").stack_slots([make_loss("two_scale"),
                                               make_loss("two_scale_fixed")]) is None


def test_the_stack_trains_the_two_scale_losses():
    base = RunSpec(dataset="toy", model="mlp", lr=0.1, epochs=3, device="cpu", progress=False)
    for loss_id in ("two_scale", "two_scale_fixed", "two_scale_sep", "one_scale"):
        assert stacked_refusal(base.replace(loss=loss_id), make_loss(loss_id), (5,), 3) is None


def test_a_diverging_two_scale_model_leaves_the_others_alone():
    """Models frozen at zero weights (R = 0) keep finite weights and a finite loss (R and the
    layer norms of dead models are taken as 1), and the stack's other models train as they
    would without them."""
    from bench.train._stack import Stack

    ds = toy_dataset()
    X, y = 100 * ds.X, ds.y
    split = ds.splits("random")[0]
    losses = [make_loss("two_scale_sep"), make_loss("two_scale_sep", eta=1.0)]
    spec = StackSpec(arch="mlp", losses=losses, lrs=[1e3, 0.01], seeds=[0], epochs=4,
                     batch_size=4)
    both = train_stack(spec, X, y, 3, split)
    assert both["diverged"][-1, 0, :, 0].all() and not both["diverged"][:, :, :, 1].any()
    alone = train_stack(spec.__class__(**{**spec.__dict__, "lrs": [0.01]}), X, y, 3, split)
    for key, values in alone.items():
        np.testing.assert_allclose(both[key][..., 1:], values, rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    stack = Stack(spec, X.shape[1], 3)
    Xtr, ytr = torch.from_numpy(X[split[0]]), torch.from_numpy(y[split[0]])[None, None]
    g = torch.Generator().manual_seed(0)
    for epoch in range(4):
        train_loss = stack.train_epoch(Xtr, ytr, [torch.randperm(len(Xtr), generator=g)],
                                       epoch / 4)
        stack.check_divergence(train_loss)
    assert stack.diverged[..., 0].all() and not stack.diverged[..., 1].any()
    assert bool(torch.isfinite(stack.flat).all())


@pytest.mark.real_data
@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_stack_equals_torch_trainer_on_uci(arch, uci_source, splits_source):
    """Iris, the UCI protocol's lr and batch size, the four losses at the paper's η."""
    from bench.data import get_dataset
    from bench.train import fit_torch_grid

    ds = get_dataset("iris", uci_source, splits_source=splits_source)
    split = ds.splits("klambauer")[0]
    methods = [("one_scale", {}), ("two_scale", {}), ("two_scale_fixed", {}),
               ("two_scale_sep", {})]
    stack = train_stack(StackSpec(arch=arch, losses=[make_loss(i, **p) for i, p in methods],
                                  lrs=[0.01], seeds=[1], epochs=6), ds.X, ds.y, ds.n_classes,
                        split)
    base = RunSpec(dataset="iris", model=arch, epochs=6, device="cpu", progress=False)
    per_model = fit_torch_grid(base, methods, [0.01], [1], ds, split, **QUIET)
    assert stack.keys() == per_model.keys()
    for key, values in per_model.items():
        np.testing.assert_allclose(stack[key], values, rtol=1e-4, atol=1e-5, err_msg=key)
    assert np.isfinite(per_model["test_acc"]).all()
