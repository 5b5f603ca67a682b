"""The per-model torch trainer: equal to the stacked engine, resumable, schedules, weight decay,
loss parameters, the DataLoader path, forward's T-hat through ``prepare``, predictions."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data import ArrayDataset, get_dataset
from bench.losses import Loss, list_losses, make_loss, register_loss
from bench.spec import RunSpec
from bench.train import StackSpec, fit_torch, fit_torch_grid, train_stack
from bench.train.torch_trainer import make_scheduler

QUIET = {"log": lambda msg: None}


def _toy(n=45, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = ((X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64) + (X[:, 1] > 1)).astype(
        np.int64)
    idx = rng.permutation(n)
    return ArrayDataset("toy", X, y, c), (idx[:25], idx[25:35], idx[35:])


def _spec(**fields) -> RunSpec:
    base = {"dataset": "toy", "model": "linear", "epochs": 5, "batch_size": 4, "lr": 0.05,
            "device": "cpu", "progress": False}
    return RunSpec(**{**base, **fields})


def _max_diff(a: dict, b: dict) -> float:
    """Largest |a - b| over every metric array; NaN positions and divergence flags must match."""
    assert a.keys() == b.keys()
    worst = 0.0
    for key in a:
        if key == "diverged":
            np.testing.assert_array_equal(a[key], b[key])
            continue
        np.testing.assert_array_equal(np.isnan(a[key]), np.isnan(b[key]), err_msg=key)
        if np.isfinite(a[key]).any():
            worst = max(worst, float(np.nanmax(np.abs(a[key] - b[key]))))
    return worst


# -- equal to the stacked engine on real data ---------------------------------------------------
EQUIV_LOSSES = ["ce", "el", "ce_el_0to05", "focal", "trunc_gce"]


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["iris", "breast-tissue"])
@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_torch_trainer_equals_stack_on_uci(name, arch, uci_source, splits_source):
    """6 epochs: ce_el_0to05 switches phase at epochs 1, 3, 5 and trunc_gce prunes from
    epoch 2 on, inside the run."""
    ds = get_dataset(name, uci_source, splits_source=splits_source)
    split = ds.splits("klambauer")[0]
    assert make_loss("trunc_gce").prune_epochs(6)[0] == 2
    assert make_loss("ce_el_0to05").phase_starts(6)[1:4] == [1, 3, 3]
    stack = train_stack(StackSpec(arch=arch, losses=[make_loss(i) for i in EQUIV_LOSSES],
                                  lrs=[0.01], seeds=[1], epochs=6), ds.X, ds.y, ds.n_classes,
                        split)
    base = RunSpec(dataset=name, model=arch, epochs=6, device="cpu", progress=False)
    per_model = fit_torch_grid(base, [(i, {}) for i in EQUIV_LOSSES], [0.01], [1], ds, split,
                               **QUIET)
    assert _max_diff(stack, per_model) < 1e-5
    assert np.isfinite(per_model["test_acc"]).all()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_torch_trainer_equals_stack_with_lr_multiplier_and_loss_params(optimizer):
    """ce_gradnorm's lr multiplier and a loss parameter (gce q) reach the torch trainer as
    they reach the stack; the parameter changes the result."""
    ds, split = _toy()
    methods = [("ce_gradnorm", {"apply": "lr", "schedule": "ce_el_0"}), ("gce", {"q": 0.3}),
               ("trunc_gce", {"prune_start": 0.2, "prune_every": 0.2})]
    losses = [make_loss(i, **p) for i, p in methods]
    stack = train_stack(StackSpec(arch="mlp", losses=losses, lrs=[0.1, 0.02], seeds=[0],
                                  epochs=5, batch_size=4, optimizer=optimizer),
                        ds.X, ds.y, ds.n_classes, split)
    per_model = fit_torch_grid(_spec(model="mlp", optimizer=optimizer), methods, [0.1, 0.02],
                               [0], ds, split, **QUIET)
    assert _max_diff(stack, per_model) < 1e-5
    default_q = fit_torch(_spec(model="mlp", optimizer=optimizer, loss="gce", lr=0.1), ds, split,
                          **QUIET)
    assert not np.allclose(default_q["train_loss"], per_model["train_loss"][:, 0, 1, 0])


# -- resume after a kill ------------------------------------------------------------------------
class _KilledError(Exception):
    pass


def _kill_at(k):
    def on_epoch(epoch):
        if epoch == k:
            raise _KilledError

    return on_epoch


@pytest.mark.parametrize(("loss", "params"), [
    ("trunc_gce", {"prune_start": 0.2, "prune_every": 0.2}),  # loss state: sample weights
    ("two_scale", {}),  # trainable loss parameters in the optimiser
    ("cot", {}),  # a second optimiser
    ("forward", {}),  # T-hat from a reference run, set in prepare
])
def test_resumed_run_equals_uninterrupted_run(tmp_path, loss, params):
    ds, split = _toy()
    spec = _spec(model="mlp", loss=loss, loss_params=params, epochs=6, schedule="multistep",
                 milestones=(2, 4), gamma=0.5)
    whole = fit_torch(spec, ds, split, **QUIET)
    messages = []
    with pytest.raises(_KilledError):
        fit_torch(spec, ds, split, checkpoint_dir=tmp_path, on_epoch=_kill_at(2),
                  log=messages.append)
    checkpoint = tmp_path / f"{spec.run_id}.pt"
    assert checkpoint.exists() and list(tmp_path.iterdir()) == [checkpoint]
    messages.clear()
    resumed = fit_torch(spec, ds, split, checkpoint_dir=tmp_path, log=messages.append)
    assert any("resumed after epoch 3" in m for m in messages)
    assert not any("reference model" in m for m in messages)  # T-hat came from the checkpoint
    assert not checkpoint.exists()
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)
    assert np.isfinite(whole["test_acc"]).all()


# -- schedules and weight decay -----------------------------------------------------------------
def test_schedules_set_the_lr_of_each_epoch():
    def lrs(spec):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=spec.lr)
        scheduler, out = make_scheduler(spec, opt), []
        for _ in range(spec.epochs):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
        return out

    multistep = _spec(lr=0.4, epochs=6, schedule="multistep", milestones=(2, 5), gamma=0.5)
    assert lrs(multistep) == pytest.approx([0.4, 0.4, 0.2, 0.2, 0.2, 0.1], abs=1e-15)
    cosine = _spec(lr=0.4, epochs=5, schedule="cosine")
    want = [0.2 * (1 + math.cos(math.pi * e / 5)) for e in range(5)]
    assert lrs(cosine) == pytest.approx(want, abs=1e-12)
    assert lrs(_spec(lr=0.4, epochs=3)) == [0.4, 0.4, 0.4]


def test_multistep_changes_training_from_its_first_milestone_on():
    ds, split = _toy()
    constant = fit_torch(_spec(epochs=5), ds, split, **QUIET)
    stepped = fit_torch(_spec(epochs=5, schedule="multistep", milestones=(3,), gamma=0.1), ds,
                        split, **QUIET)
    for key in constant:
        np.testing.assert_array_equal(stepped[key][:3], constant[key][:3], err_msg=key)
    assert not np.allclose(stepped["train_loss"][3:], constant["train_loss"][3:])


def test_weight_decay_is_torch_sgd_l2_on_every_parameter():
    """Reference loop written out: g += wd * p (weights and biases), b = m b + g, p -= lr b."""
    ds, split = _toy()
    lr, m, wd, epochs, batch = 0.05, 0.9, 0.3, 4, 4
    spec = _spec(lr=lr, momentum=m, weight_decay=wd, epochs=epochs, batch_size=batch)
    out = fit_torch(spec, ds, split, **QUIET)
    from bench.models import create_model
    from bench.train._stack import order_generator

    layer = create_model("linear", input_shape=(5,), n_classes=3, seed=0)[0]
    W, b = layer.weight.detach().clone(), layer.bias.detach().clone()
    bufs = [None, None]
    X, y = torch.from_numpy(ds.X[split[0]]), torch.from_numpy(ds.y[split[0]])
    gen = order_generator(0, 0)
    losses = []
    for _ in range(epochs):
        perm, means = torch.randperm(len(y), generator=gen), []
        for a in range(0, len(y), batch):
            idx = perm[a:a + batch]
            Wg, bg = W.clone().requires_grad_(), b.clone().requires_grad_()
            value = torch.nn.functional.cross_entropy(X[idx] @ Wg.t() + bg, y[idx])
            value.backward()
            means.append(float(value.detach()))
            for i, (p, g) in enumerate(((W, Wg.grad), (b, bg.grad))):
                g = g + wd * p
                bufs[i] = g.clone() if bufs[i] is None else bufs[i] * m + g
                p -= lr * bufs[i]
        losses.append(np.mean(means))
    np.testing.assert_allclose(out["train_loss"], losses, rtol=1e-5)
    Xt, yt = torch.from_numpy(ds.X[split[2]]), torch.from_numpy(ds.y[split[2]])
    acc = float(((Xt @ W.t() + b).argmax(-1) == yt).float().mean())
    assert out["test_acc"][-1] == pytest.approx(acc)
    no_decay = fit_torch(spec.replace(weight_decay=0.0), ds, split, **QUIET)
    assert not np.allclose(no_decay["train_loss"][1:], out["train_loss"][1:])


# -- data paths ---------------------------------------------------------------------------------
class _FileRows:
    """X as one .npy file per row, read on demand: a file-list dataset's ``read(i)``."""

    def __init__(self, X, folder):
        self.paths = []
        for i, row in enumerate(X):
            self.paths.append(folder / f"{i}.npy")
            np.save(self.paths[-1], row)
        self.dtype, self.shape = X.dtype, X.shape

    def __len__(self):
        return len(self.paths)

    def read(self, i):
        return np.load(self.paths[i])


class _FileDataset:
    def __init__(self, ds, folder):
        self.name, self.family, self.n_classes = "files", "arrays", ds.n_classes
        self.X, self.y, self.input_shape, self.class_names = _FileRows(ds.X, folder), ds.y, \
            ds.input_shape, None


def test_dataloader_path_equals_on_device_path(tmp_path):
    ds, split = _toy()
    spec = _spec(model="mlp", loss="trunc_gce", loss_params={"prune_start": 0.2}, epochs=4)
    on_device = fit_torch(spec, ds, split, data_path="device", **QUIET)
    loader = fit_torch(spec, ds, split, data_path="loader", **QUIET)
    messages = []
    files = fit_torch(spec, _FileDataset(ds, tmp_path), split, log=messages.append)
    assert any("DataLoader" in m for m in messages)
    for key in on_device:
        np.testing.assert_array_equal(loader[key], on_device[key], err_msg=key)
        np.testing.assert_array_equal(files[key], on_device[key], err_msg=key)


def test_uint8_inputs_reach_the_augment_hook_as_float_in_0_1():
    ds, split = _toy()
    rng = np.random.default_rng(1)
    images = ArrayDataset("img", rng.integers(0, 256, size=(45, 1, 2, 3), dtype=np.uint8), ds.y,
                          3)
    seen = []

    def augment(x, generator, train):
        seen.append((x.dtype, float(x.min()), float(x.max()), train))
        return x + 0.01 * torch.randn(x.shape, generator=generator) if train else x

    out = fit_torch(_spec(epochs=2, dataset="img"), images, split, augment=augment, **QUIET)
    assert {s[0] for s in seen} == {torch.float32}
    assert min(s[1] for s in seen) >= 0.0 and max(s[2] for s in seen) <= 1.0
    assert {s[3] for s in seen} == {True, False}
    again = fit_torch(_spec(epochs=2, dataset="img"), images, split, augment=augment, **QUIET)
    np.testing.assert_array_equal(out["train_loss"], again["train_loss"])  # seeded augment


# -- losses with a first stage, predictions, divergence -----------------------------------------
def test_forward_without_t_estimates_t_hat_in_prepare():
    class Ctx:
        asked: list = []

        def reference_probs(self, loss_id):
            self.asked.append(loss_id)
            return torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])

    from bench.losses._noisy import estimate_transition_matrix

    loss, ctx = make_loss("forward"), Ctx()
    loss.prepare(ctx)
    assert ctx.asked == ["ce"]
    want = estimate_transition_matrix(Ctx().reference_probs("ce"))
    torch.testing.assert_close(loss.transition, want)
    copy = make_loss("forward")
    copy.load_state_dict(loss.state_dict())
    torch.testing.assert_close(copy.transition, want)

    ds, split = _toy()
    messages = []
    out = fit_torch(_spec(loss="forward"), ds, split, log=messages.append)
    assert any("reference model (ce" in m for m in messages)
    assert np.isfinite(out["test_acc"]).all()


def test_predictions_are_written_at_the_asked_epochs(tmp_path):
    ds, split = _toy()
    spec = _spec(epochs=3, save_predictions_at=(1, 3))
    out = fit_torch(spec, ds, split, predictions_dir=tmp_path, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{spec.run_id}-epoch{e}{suffix}" for e in (1, 3) for suffix in ("-hist.csv", ".csv.gz")]
    with gzip.open(tmp_path / f"{spec.run_id}-epoch3.csv.gz") as f:
        table = pd.read_csv(f)
    assert list(table.columns) == ["index", "y", "p_y", "argmax", "correct"]
    np.testing.assert_array_equal(table["index"], split[2])
    np.testing.assert_array_equal(table["y"], ds.y[split[2]])
    assert table["correct"].mean() == pytest.approx(out["test_acc"][2])
    assert table["p_y"].mean() == pytest.approx(out["test_mean_py"][2], abs=1e-5)


class _NanFromHalf(Loss):
    """CE until half-way, then NaN: a run that diverges in epoch 2 of 4."""

    def per_sample(self, logits, target, progress=0.0, **extra):
        value = -torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return value * float("nan") if progress >= 0.5 else value


if "test_nan_from_half" not in list_losses():
    register_loss("test_nan_from_half")(_NanFromHalf)


def test_divergence_stops_training_and_fills_nan():
    ds, split = _toy()
    out = fit_torch(_spec(epochs=4, loss="test_nan_from_half"), ds, split, **QUIET)
    np.testing.assert_array_equal(out["diverged"], [False, False, True, True])
    assert np.isnan(out["test_acc"][2:]).all() and np.isnan(out["train_loss"][2:]).all()
    assert np.isfinite(out["test_acc"][:2]).all() and np.isfinite(out["train_loss"][:2]).all()


def test_amp_is_ignored_on_cpu_with_a_log_line():
    ds, split = _toy()
    messages = []
    out = fit_torch(_spec(amp=True, epochs=2), ds, split, log=messages.append)
    assert any(m.startswith("amp: ignored on cpu") for m in messages)
    plain = fit_torch(_spec(epochs=2), ds, split, **QUIET)
    np.testing.assert_array_equal(out["test_acc"], plain["test_acc"])
