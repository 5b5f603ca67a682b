"""Stacked engine vs the per-model torch trainer, divergence isolation and determinism
(synthetic)."""

import numpy as np
import pytest
import torch

from bench.data import ArrayDataset
from bench.losses import Loss, make_loss, register_loss
from bench.spec import RunSpec
from bench.train import StackSpec, fit_torch, fit_torch_grid, train_stack


def _toy(n=45, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64) + (X[:, 1] > 1)
    idx = rng.permutation(n)
    return X, y.astype(np.int64), c, (idx[:25], idx[25:35], idx[35:])


def _per_model(spec: StackSpec, X, y, c, split, methods=None):
    """The torch trainer on the stack's grid (``methods``: (id, params) of spec.losses)."""
    methods = methods or [(loss.id, {}) for loss in spec.losses]
    base = RunSpec(dataset="toy", model=spec.arch, epochs=spec.epochs,
                   batch_size=spec.batch_size, optimizer=spec.optimizer,
                   momentum=spec.momentum, fold=spec.fold, device="cpu", progress=False)
    return fit_torch_grid(base, methods, spec.lrs, spec.seeds, ArrayDataset("toy", X, y, c),
                          split, log=lambda msg: None)


def _assert_same(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=1e-4, err_msg=key)


@pytest.mark.parametrize("arch", ["linear", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stack_equals_torch_trainer(arch, optimizer):
    X, y, c, split = _toy()
    ids = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]
    spec = StackSpec(arch=arch, losses=[make_loss(i) for i in ids], lrs=[0.05, 0.01],
                     seeds=[0, 1], epochs=7, batch_size=4, optimizer=optimizer)
    _assert_same(train_stack(spec, X, y, c, split), _per_model(spec, X, y, c, split))


def test_stack_is_deterministic():
    X, y, c, split = _toy()
    spec = StackSpec(arch="mlp", losses=[make_loss("ce"), make_loss("focal")], lrs=[0.05],
                     seeds=[3], epochs=3)
    a, b = train_stack(spec, X, y, c, split), train_stack(spec, X, y, c, split)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


class _NanLater(Loss):
    """CE until half-way, then NaN: a model that diverges mid-training."""

    def per_sample(self, logits, target, progress=0.0, **extra):
        value = torch.nn.functional.cross_entropy(logits, target, reduction="none") \
            if logits.dim() == 2 else -torch.log_softmax(logits, -1).gather(
                -1, target.unsqueeze(-1)).squeeze(-1)
        return value * float("nan") if progress >= 0.5 else value


if "test_nan_later" not in __import__("bench.losses").losses.list_losses():
    register_loss("test_nan_later", label="NaN later")(_NanLater)


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_divergence_of_one_loss_leaves_the_others_unchanged(arch):
    X, y, c, split = _toy()
    base = StackSpec(arch=arch, losses=[make_loss("ce"), make_loss("el")], lrs=[0.05, 0.01],
                     seeds=[0], epochs=6)
    alone = train_stack(base, X, y, c, split)
    spec = StackSpec(arch=arch, losses=[make_loss("ce"), make_loss("test_nan_later"),
                                        make_loss("el")],
                     lrs=[0.05, 0.01], seeds=[0], epochs=6)
    mixed = train_stack(spec, X, y, c, split)
    # equal up to float rounding: a wider stack changes the BLAS blocking of the matmuls
    _assert_same({k: v[:, :, [0, 2]] for k, v in mixed.items()}, alone, atol=1e-6)
    assert not mixed["diverged"][:3, :, 1].any() and mixed["diverged"][3:, :, 1].all()
    assert np.isnan(mixed["test_acc"][3:, :, 1]).all()
    assert np.isfinite(mixed["test_acc"][:3, :, 1]).all()
    per_model = _per_model(spec, X, y, c, split)
    np.testing.assert_array_equal(per_model["diverged"], mixed["diverged"])


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_stack_equals_torch_trainer_for_losses_with_stacked_needs(arch):
    """Truncated Lq (per-sample weights pruned from the current model), ce_gradnorm (lr
    multiplier; per-phase gradient factor, phases changing inside the run) and tce next to plain
    losses, with pruning inside the run."""
    X, y, c, split = _toy()
    prune = {"prune_start": 0.3, "prune_every": 0.2}
    trunc = make_loss("trunc_gce", **prune)
    assert trunc.prune_epochs(8)  # pruning happens during these 8 epochs
    assert len(set(make_loss("ce_gradnorm").phase_starts(8))) == 6  # six phases in 8 epochs
    methods = [("ce", {}), ("trunc_gce", prune), ("ce_gradnorm", {"schedule": "ce_el_0",
                                                                   "apply": "lr"}),
               ("ce_gradnorm", {}), ("tce", {}), ("gce", {}), ("mae", {})]
    spec = StackSpec(arch=arch, losses=[make_loss(i, **p) for i, p in methods],
                     lrs=[0.1, 0.02], seeds=[0, 1], epochs=8, batch_size=4)
    stack = train_stack(spec, X, y, c, split)
    _assert_same(stack, _per_model(spec, X, y, c, split, methods))
    # the per-phase factor changes training: ce_gradnorm's run is not CE's
    assert not np.allclose(stack["train_mean_py"][:, :, 3], stack["train_mean_py"][:, :, 0])


def test_torch_trainer_runs_losses_the_stack_lacks():
    from bench.train import stacked_refusal

    X, y, c, split = _toy()
    ds = ArrayDataset("toy", X, y, c)
    base = RunSpec(dataset="toy", model="linear", lr=0.05, epochs=3, device="cpu",
                   progress=False)
    for loss_id in ("cot", "forward"):
        assert stacked_refusal(base.replace(loss=loss_id), make_loss(loss_id), (5,), c)
    assert stacked_refusal(base, make_loss("ce"), (5,), c) is None
    out = {i: fit_torch(base.replace(loss=i), ds, split, log=lambda msg: None)
           for i in ("ce", "two_scale", "cot", "forward")}
    for arrays in out.values():
        assert np.isfinite(arrays["test_acc"]).all() and not arrays["diverged"].any()
    # COT's second pass changes training: its run differs from plain CE's
    assert not np.allclose(out["cot"]["train_mean_py"], out["ce"]["train_mean_py"])


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_deferred_evaluation_is_bitwise_one_epoch_at_a_time(arch, monkeypatch):
    """Kept weights evaluated several epochs per pass give exactly the per-epoch numbers."""
    from bench.train import _stack

    X, y, c, split = _toy()
    spec = StackSpec(arch=arch, losses=[make_loss("ce"), make_loss("focal"),
                                        make_loss("trunc_gce", prune_start=0.4)],
                     lrs=[0.05, 0.01], seeds=[0, 1], epochs=5, batch_size=4)
    together = train_stack(spec, X, y, c, split)
    monkeypatch.setattr(_stack, "SNAPSHOT_FLOATS", 1)  # one epoch per evaluation pass
    one_by_one = train_stack(spec, X, y, c, split)
    for key in together:
        np.testing.assert_array_equal(together[key], one_by_one[key], err_msg=key)
    stack = _stack.Stack(spec, X.shape[1], c)
    Xv, yv = torch.from_numpy(X[split[1]]), torch.from_numpy(y[split[1]])[None, None]
    np.testing.assert_array_equal(stack.evaluate_kept(stack.flat[None], Xv, yv)[0],
                                  stack.evaluate(Xv, yv))
