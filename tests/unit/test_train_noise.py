"""Label noise through both trainers: noise levels as a stack axis, noisy train/val labels and
clean test labels, forward with the true T, the noise columns, the ``--noise`` flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _toy import toy_dataset

from bench.errors import LossbenchError
from bench.losses import Loss, list_losses, register_loss
from bench.models import create_model
from bench.noise import corrupt_split
from bench.spec import RunSpec
from bench.train import train_specs
from bench.train._labels import build_loss, run_labels

QUIET = {"log": lambda msg: None}
NOISES = ({}, {"kind": "uniform", "rate": 0.4}, {"kind": "pair", "rate": 0.3})


pytestmark = pytest.mark.usefixtures("one_thread")


def _specs(losses, noises=NOISES, seeds=(0, 1), lrs=(0.1,), **fields):
    base = {"dataset": "toy", "model": "mlp", "protocol": "random", "epochs": 4,
            "batch_size": 4, "device": "cpu", "progress": False}
    return [RunSpec(**{**base, **fields}, loss=loss, loss_params=params, lr=lr, seed=seed,
                    noise=noise)
            for seed in seeds for noise in noises for loss, params in losses for lr in lrs]


def _assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, atol=1e-5) -> None:
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(a[col], b[col], atol=atol, rtol=1e-4, err_msg=col)
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_noisy_grid_stacked_equals_torch(arch):
    """Three noise levels x losses with stacked needs (truncated Lq prunes on the noisy
    labels inside the run) and forward with the true T, in one stack and per model."""
    ds = toy_dataset()
    losses = [("ce", {}), ("trunc_gce", {"prune_start": 0.25, "prune_every": 0.25}),
              ("trunc_gce", {"prune_start": 1, "prune_every": 1, "prune_with": "current"}),
              ("forward", {"T": True})]
    specs = _specs(losses, model=arch)
    stacked = train_specs(specs, ds, trainer="stacked", **QUIET)
    assert set(stacked.info["trainers"].values()) == {"stacked"}
    per_model = train_specs(specs, ds, trainer="torch", **QUIET)
    _assert_tables_equal(stacked.epochs, per_model.epochs)
    _assert_tables_equal(stacked.summary, per_model.summary)
    # the noise levels trained differently
    rows = stacked.summary.query("loss == 'ce' and seed == 0")
    assert rows["noise_kind"].tolist() == ["none", "uniform", "pair"]
    assert rows["train_mean_py"].nunique() == 3


def test_truncated_lq_prunes_with_the_best_validation_model():
    """The paper's rule (best-validation model so far) and the other reading (current model)
    are different runs once validation accuracy drops below its best."""
    ds = toy_dataset(n=90)
    prune = {"prune_start": 1, "prune_every": 1}
    specs = _specs([("trunc_gce", prune), ("trunc_gce", {**prune, "prune_with": "current"})],
                   noises=[NOISES[1]], lrs=(0.5,), epochs=8)
    summary = train_specs(specs, ds, trainer="stacked", **QUIET).epochs
    is_current = summary["loss"].str.contains("prune_with=current")
    best, current = (summary[m]["train_loss"].to_numpy() for m in (~is_current, is_current))
    assert len(best) == len(current) == 16
    assert not np.allclose(best, current)


def test_forward_t_hat_is_estimated_from_the_selected_ce_model_and_trained_stacked():
    """Two stages in the stack: T-hat of each (noise, seed) comes from the training-set softmax
    of the CE model the protocol selects (best lr at its best validation epoch); a per-model
    CE run to that epoch gives the same estimate, and per-model forward runs with that T-hat
    give the same tables."""
    from bench.losses._noisy import estimate_transition_matrix
    from bench.train.torch_trainer import Run, make_data

    ds = toy_dataset(n=90)
    specs = _specs([("ce", {}), ("forward", {})], noises=[NOISES[2]], lrs=(0.1, 0.02),
                   epochs=6)
    result = train_specs(specs, ds, **QUIET)
    assert result.info["trainers"] == {"ce": "stacked", "forward": "stacked"}
    tr = result.transitions
    assert len(tr) == 2 * 3 * 3  # seeds x C x C
    # the table `lossbench transitions` collects (one estimate per seed at this level)
    from analysis.transitions import COLUMNS, transition_error

    assert tuple(tr.columns) == COLUMNS
    assert transition_error(tr)["n_estimates"].tolist() == [2]
    split = ds.splits("random")[0]
    for seed in (0, 1):
        rows = tr[tr["seed"] == seed]
        lr, epochs = float(rows["reference_lr"].iloc[0]), int(rows["reference_epoch"].iloc[0])
        ce = [s for s in specs if s.loss == "ce" and s.seed == seed and s.lr == lr][0]
        labels = run_labels(ds, ce, split)
        from bench.train._labels import LabelView

        view = LabelView(ds, labels.y)
        run = Run(ce, view, make_data(view, split, torch.device("cpu")), torch.device("cpu"),
                  None, lambda m: None)
        from bench.train.torch_trainer import _context

        ctx = _context(run, view, split, None, lambda m: None)
        for epoch in range(epochs):
            run.train_epoch(epoch, ctx)
        T_hat = estimate_transition_matrix(torch.softmax(run.train_logits(), -1)).numpy()
        np.testing.assert_allclose(rows["T_hat"].to_numpy().reshape(3, 3), T_hat, atol=1e-4)
        np.testing.assert_allclose(rows["T_true"].to_numpy().reshape(3, 3), labels.T)
        # forward with that T-hat, per model, is the stack's forward
        fwd = [s.replace(loss_params={"T": T_hat}) for s in specs
               if s.loss == "forward" and s.seed == seed]
        per_model = train_specs(fwd, ds, trainer="torch", **QUIET).summary
        stacked = result.summary.query(f"loss == 'forward' and seed == {seed}")
        for col in ("val_acc", "test_acc", "best_epoch", "train_loss"):
            np.testing.assert_allclose(per_model[col].to_numpy(), stacked[col].to_numpy(),
                                       atol=1e-4, err_msg=col)


class _Frozen(Loss):
    """Zero gradient: every model stays at its initial weights (metrics = the init model's)."""

    def per_sample(self, logits, target, progress=0.0, **extra):
        return logits.sum(-1) * 0.0


if "test_frozen" not in list_losses():
    register_loss("test_frozen")(_Frozen)


@pytest.mark.parametrize("trainer", ["stacked", "torch"])
def test_train_and_val_see_the_seeds_noisy_labels_and_test_the_clean_ones(trainer):
    """With frozen models, train/val accuracy is the init model's accuracy against the labels
    ``corrupt_split`` draws for the seed; test accuracy is against the clean labels."""
    ds = toy_dataset()
    specs = _specs([("test_frozen", {})], epochs=1)
    table = train_specs(specs, ds, trainer=trainer, **QUIET).summary
    split = ds.splits("random")[0]
    for row in table.itertuples():
        model = create_model("mlp", input_shape=(5,), n_classes=3, seed=row.seed)
        with torch.no_grad():
            pred = model(torch.from_numpy(ds.X)).argmax(-1).numpy()
        if row.noise_kind == "none":
            y = ds.y
        else:
            y, _, info = corrupt_split(ds.y, split, 3, row.noise_kind, row.noise_rate,
                                       seed=row.seed, dataset_name="toy")
            assert row.noise_realised_train == pytest.approx(info["noise_realised_train"])
            assert info["noise_realised_train"] > 0
        for part, idx in (("train", split[0]), ("val", split[1])):
            assert getattr(row, f"{part}_acc") == pytest.approx(np.mean(pred[idx] == y[idx]))
        assert row.test_acc == pytest.approx(np.mean(pred[split[2]] == ds.y[split[2]]))


def test_labels_of_a_spec_are_corrupt_split_of_its_seed_with_clean_test():
    ds = toy_dataset()
    split = ds.splits("random")[0]
    for noise in NOISES[1:]:
        for seed in (0, 1):
            spec = _specs([("ce", {})], noises=[noise], seeds=[seed])[0]
            labels = run_labels(ds, spec, split)
            want, T, _ = corrupt_split(ds.y, split, 3, noise["kind"], noise["rate"], seed=seed,
                                       dataset_name="toy")
            np.testing.assert_array_equal(labels.y, want)
            np.testing.assert_array_equal(labels.T, T)
            np.testing.assert_array_equal(labels.y[split[2]], ds.y[split[2]])
            assert (labels.y[split[0]] != ds.y[split[0]]).any()
    a, b = (run_labels(ds, _specs([("ce", {})], noises=[NOISES[1]], seeds=[s])[0], split).y
            for s in (0, 1))
    assert (a != b).any()  # seeds draw their own noise


def test_forward_true_t_is_the_drawn_matrix_and_the_identity_when_clean():
    ds = toy_dataset()
    split = ds.splits("random")[0]
    noisy, clean = _specs([("forward", {"T": True})], noises=[NOISES[2], {}], seeds=[0])
    T = run_labels(ds, noisy, split).T
    assert not np.allclose(T, np.eye(3))
    np.testing.assert_allclose(build_loss(noisy, T).transition.numpy(), T)
    assert build_loss(noisy).needs == {"transition_matrix"}  # check before the data: T-hat
    assert build_loss(noisy, T).needs == frozenset()  # the stack trains it
    # clean: forward with T = I is CE
    specs = _specs([("ce", {}), ("forward", {"T": "true"})], noises=[{}], seeds=[0])
    table = train_specs(specs, ds, trainer="stacked", **QUIET).epochs
    ce, fwd = (table[table["loss"] == m].reset_index(drop=True) for m in ("ce", "forward(T=true)"))
    np.testing.assert_allclose(ce["train_loss"], fwd["train_loss"], rtol=1e-6)
    np.testing.assert_array_equal(ce["val_acc"], fwd["val_acc"])


def test_noise_columns_only_when_a_spec_has_noise():
    ds = toy_dataset()
    clean = train_specs(_specs([("ce", {})], noises=[{}], epochs=1), ds, **QUIET)
    assert not any(c.startswith("noise") for c in clean.summary.columns)
    assert not any(c.startswith("noise") for c in clean.epochs.columns)
    noisy = train_specs(_specs([("ce", {})], epochs=1), ds, **QUIET)
    for table in (noisy.summary, noisy.epochs):
        cols = list(table.columns)
        assert cols[cols.index("lr") + 1:cols.index("lr") + 4] == [
            "noise_kind", "noise_rate", "noise_realised_train"]
        none = table[table["noise_kind"] == "none"]
        assert len(none) and (none["noise_rate"] == 0).all()
        assert (none["noise_realised_train"] == 0).all()
    # the clean rows of a noisy job are the clean job's rows
    rows = noisy.summary[noisy.summary["noise_kind"] == "none"].drop(
        columns=["noise_kind", "noise_rate", "noise_realised_train"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, clean.summary)


def test_noise_flag_parses_levels_and_rejects_bad_ones():
    from bench.train._cli import parse_noise

    assert parse_noise(["none", "uniform:0.2", "clean", "pair:0.1"], None) == [
        {}, {"kind": "uniform", "rate": 0.2}, {}, {"kind": "pair", "rate": 0.1}]
    assert parse_noise(["uniform:0.2", "pair:0.1"], "next") == [
        {"kind": "uniform", "rate": 0.2}, {"kind": "pair", "rate": 0.1, "mapping": "next"}]
    for items, mapping, message in ((["uniform"], None, "KIND:RATE"),
                                    (["flip:0.2"], None, "unknown kind 'flip'"),
                                    (["pair:0.7"], None, "rate must be in [0, 0.5]"),
                                    (["pair:0.2"], "nope", "unknown mapping 'nope'"),
                                    (["uniform:0.2"], "next", "no --noise level uses")):
        with pytest.raises(LossbenchError, match=message.replace("[", r"\[")):
            parse_noise(items, mapping)
