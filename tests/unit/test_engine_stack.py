"""Stacked engine vs the naive per-model loop, divergence isolation and determinism (synthetic)."""

import numpy as np
import pytest
import torch

from bench.losses import make_loss, register_loss
from bench.losses._base import Loss
from bench.train import StackSpec, train_naive, train_stack


def _toy(n=45, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64) + (X[:, 1] > 1)
    idx = rng.permutation(n)
    return X, y.astype(np.int64), c, (idx[:25], idx[25:35], idx[35:])


def _assert_same(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=1e-4, err_msg=key)


@pytest.mark.parametrize("arch", ["linear", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stack_equals_naive_loop(arch, optimizer):
    X, y, c, split = _toy()
    ids = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]
    spec = StackSpec(arch=arch, losses=[make_loss(i) for i in ids], lrs=[0.05, 0.01],
                     seeds=[0, 1], epochs=7, batch_size=4, optimizer=optimizer)
    _assert_same(train_stack(spec, X, y, c, split), train_naive(spec, X, y, c, split))


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
    naive = train_naive(spec, X, y, c, split)
    np.testing.assert_array_equal(naive["diverged"], mixed["diverged"])


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_stack_equals_naive_for_losses_with_stacked_needs(arch):
    """Truncated Lq (per-sample weights pruned from the current model) and ce_gradnorm (lr
    multiplier) next to plain losses, with pruning inside the run."""
    X, y, c, split = _toy()
    trunc = make_loss("trunc_gce", prune_start=0.3, prune_every=0.2)
    assert trunc.prune_epochs(8)  # pruning happens during these 8 epochs
    spec = StackSpec(arch=arch, losses=[make_loss("ce"), trunc, make_loss("ce_gradnorm"),
                                        make_loss("gce"), make_loss("mae")],
                     lrs=[0.1, 0.02], seeds=[0, 1], epochs=8, batch_size=4)
    _assert_same(train_stack(spec, X, y, c, split), train_naive(spec, X, y, c, split))


def test_per_model_path_runs_losses_the_stack_lacks():
    from bench.train._run import split_by_path

    X, y, c, split = _toy()
    losses = [make_loss(i) for i in ("ce", "two_scale", "cot", "forward")]
    stacked, single = split_by_path(losses)
    assert stacked == [0] and single == [1, 2, 3]
    spec = StackSpec(arch="linear", losses=losses[1:], lrs=[0.05], seeds=[0], epochs=3)
    out = train_naive(spec, X, y, c, split)
    assert np.isfinite(out["test_acc"]).all() and not out["diverged"].any()
    # COT's second pass changes training: its run differs from plain CE's
    ce = train_naive(StackSpec(arch="linear", losses=[losses[0]], lrs=[0.05], seeds=[0],
                               epochs=3), X, y, c, split)
    assert not np.allclose(out["train_mean_py"][:, :, 1], ce["train_mean_py"][:, :, 0])
