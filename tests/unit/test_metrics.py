"""Metrics of the two-scale paper (Sec. 3.1, eq. 20) and the torch trainer's study outputs:
histograms (Figs. 4-6, eq. 19), ``eval_every`` records, super-class columns, iterations.csv."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data import ArrayDataset
from bench.errors import LossbenchError
from bench.spec import RunSpec
from bench.train import fit_torch
from bench.train._metrics import metric_names, metric_sums, super_class_map
from bench.train.torch_trainer import histograms

QUIET = {"log": lambda msg: None}
AT = ("0.01", "0.02", "0.03", "0.04", "0.05")


def _metrics(logits, target, C, **kw):
    sums = metric_sums(logits, target, C, **kw)
    return dict(zip(metric_names(C, kw.get("super_class")), sums.tolist(), strict=True))


def test_metric_names():
    assert metric_names(3) == ["acc", "top2", *(f"acc_at_{a}" for a in AT), "mean_py"]
    assert metric_names(10)[:3] == ["acc", "top2", "top5"] and "top10" not in metric_names(10)
    assert metric_names(11)[:4] == ["acc", "top2", "top5", "top10"]
    sc = torch.zeros(11, dtype=torch.int64)
    assert metric_names(11, sc)[-6:] == ["superclass_acc", *(f"superclass_acc_at_{a}"
                                                             for a in AT)]


def test_hand_computed_close_enough_top_k_and_super_class():
    # y = 1 with p = (0.4, 0.375, 0.225): second by 0.025 -> close enough from at = 0.03 on
    p = torch.tensor([[0.4, 0.375, 0.225]], dtype=torch.float64)
    m = _metrics(p.log(), torch.tensor([1]), 3)
    assert m["acc"] == 0 and m["top2"] == 1 and m["mean_py"] == pytest.approx(0.375)
    assert [m[f"acc_at_{a}"] for a in AT] == [0, 0, 1, 1, 1]
    # super-classes {0, 1}, {2, 3}, {4, 5} (eq. 20): y = 0, arg-max 1 -> right super-class
    sc = torch.tensor([0, 0, 1, 1, 2, 2])
    p = torch.tensor([[0.31, 0.345, 0.045, 0.10, 0.10, 0.10],  # acc 0, super-class 1
                      [0.30, 0.05, 0.335, 0.11, 0.105, 0.10]])  # super-class 0; 0.035 away
    m = _metrics(p.log(), torch.tensor([0, 0]), 6, super_class=sc)
    assert m["acc"] == 0 and m["superclass_acc"] == 1
    assert [m[f"superclass_acc_at_{a}"] for a in AT] == [1, 1, 1, 2, 2]
    assert [m[f"acc_at_{a}"] for a in AT] == [0, 0, 0, 2, 2]


def _reference(logits: np.ndarray, y: np.ndarray, sc: np.ndarray) -> dict[str, float]:
    """The definitions of Sec. 3.1 and eq. 20 written out per sample."""
    out: dict[str, list] = {}
    for z, t in zip(logits, y, strict=True):
        p = np.exp(z - z.max())
        p /= p.sum()
        row = {"acc": p.argmax() == t, "mean_py": p[t],
               "superclass_acc": sc[p.argmax()] == sc[t]}
        for k in (2, 5, 10):
            row[f"top{k}"] = (p > p[t]).sum() < k
        for a in AT:
            row[f"acc_at_{a}"] = p[t] >= p.max() - float(a)
            row[f"superclass_acc_at_{a}"] = p[sc == sc[t]].max() >= p.max() - float(a)
        for key, value in row.items():
            out.setdefault(key, []).append(float(value))
    return {k: float(np.sum(v)) for k, v in out.items()}


@pytest.mark.parametrize("layout", ["plain", "stacked", "sample_dim_1"])
def test_metric_sums_match_the_definitions(layout):
    rng = np.random.default_rng(0)
    C, n = 12, 300
    logits = rng.normal(scale=2.0, size=(n, C)).astype(np.float32)
    y = rng.integers(0, C, n)
    sc = np.arange(C) // 3
    want = _reference(logits.astype(np.float64), y, sc)
    z, t, scm = torch.from_numpy(logits), torch.from_numpy(y), torch.from_numpy(sc)
    if layout == "plain":
        got = metric_sums(z, t, C, super_class=scm)
    elif layout == "stacked":  # [G, n, C], G = 2 copies
        got = metric_sums(torch.stack([z, z]), t, C, super_class=scm)[1]
    else:  # batch-major [n, M, C] as the linear stack evaluates
        got = metric_sums(z[:, None], t[:, None], C, sample_dim=0, super_class=scm)[0]
    names = metric_names(C, scm)
    for name, value in zip(names, got.tolist(), strict=True):
        assert value == pytest.approx(want[name], rel=1e-5, abs=1e-3), name
    # the columns every table had keep their values without a super-class map
    plain = dict(zip(metric_names(C), metric_sums(z, t, C).tolist(), strict=True))
    for name in ("acc", "top2", "top5", "acc_at_0.01", "acc_at_0.02", "acc_at_0.05", "mean_py"):
        assert plain[name] == dict(zip(names, got.tolist(), strict=True))[name]


def test_super_class_map_checks_and_fills_missing_classes():
    torch.testing.assert_close(super_class_map(np.array([0, 0, -1, 1, -1]), 5),
                               torch.tensor([0, 0, 2, 1, 3]))
    with pytest.raises(LossbenchError, match="super_class.*5 integer"):
        super_class_map(np.array([0, 1]), 5)
    with pytest.raises(LossbenchError, match="integer"):
        super_class_map(np.array([0.0, 1, 1, 0, 0]), 5)


# -- the torch trainer's study outputs ---------------------------------------------------------
def _toy(meta=None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(45, 5)).astype(np.float32)
    y = ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1)).astype(np.int64)
    idx = rng.permutation(45)
    return ArrayDataset("toy", X, y, 3, meta=meta or {}), (idx[:25], idx[25:35], idx[35:])


def _spec(**fields) -> RunSpec:
    base = {"dataset": "toy", "model": "mlp", "epochs": 3, "batch_size": 4, "lr": 0.05,
            "device": "cpu", "progress": False}
    return RunSpec(**{**base, **fields})


def test_histograms_bin_max_p_p_y_and_delta_p_of_misclassified():
    kept = {"y": np.array([0, 1, 2, 1]), "argmax": np.array([0, 2, 2, 0]),
            "p_y": np.array([0.905, 0.2, 0.5, 0.3]), "p_max": np.array([0.905, 0.7, 0.5, 0.45])}
    table = histograms(kept)
    count = table.groupby("quantity")["count"].sum()
    assert count["max_p"] == 4 and count["p_y"] == 4 and count["delta_p"] == 2
    delta = table[(table["quantity"] == "delta_p") & (table["count"] > 0)]
    # δp (eq. 19) = -0.5 and -0.15: bins [-0.5, -0.49) and [-0.15, -0.14)
    np.testing.assert_allclose(sorted(delta["lo"]), [-0.5, -0.15], atol=1e-9)
    top = table[(table["quantity"] == "max_p") & (table["lo"] > 0.899) & (table["lo"] < 0.901)]
    assert int(top["count"].iloc[0]) == 1  # 0.905 in [0.90, 0.91)


def test_trainer_writes_histograms_that_match_its_predictions(tmp_path):
    ds, split = _toy()
    spec = _spec(save_predictions_at=(3,))
    fit_torch(spec, ds, split, predictions_dir=tmp_path, **QUIET)
    hist = pd.read_csv(tmp_path / f"{spec.run_id}-epoch3-hist.csv")
    pred = pd.read_csv(tmp_path / f"{spec.run_id}-epoch3.csv.gz")
    assert list(hist.columns) == ["quantity", "lo", "hi", "count"]
    p_y = hist[hist["quantity"] == "p_y"]
    counts, _ = np.histogram(pred["p_y"], bins=100, range=(0, 1))
    np.testing.assert_array_equal(p_y["count"], counts)
    assert hist.loc[hist["quantity"] == "delta_p", "count"].sum() == (pred["correct"] == 0).sum()


def test_eval_every_adds_records_and_leaves_the_epoch_arrays_alone():
    """25 training rows in batches of 4: 7 steps per epoch. Every 7 steps is each epoch's
    end, where the record must equal the epoch's evaluation."""
    ds, split = _toy()
    plain = fit_torch(_spec(), ds, split, **QUIET)
    out = fit_torch(_spec(eval_every=7), ds, split, **QUIET)
    for key in plain:
        np.testing.assert_array_equal(out[key], plain[key], err_msg=key)
    assert set(out) - set(plain) == {k for k in out if k.startswith("iter_")}
    np.testing.assert_array_equal(out["iter_iteration"], [7, 14, 21])
    np.testing.assert_allclose(out["iter_epoch"], [1, 2, 3])
    for name in ("acc", "top2", "acc_at_0.03", "mean_py"):
        np.testing.assert_array_equal(out[f"iter_test_{name}"], out[f"test_{name}"])
        np.testing.assert_array_equal(out[f"iter_val_{name}"], out[f"val_{name}"])
    np.testing.assert_allclose(out["iter_train_loss"], out["train_loss"], rtol=1e-6)
    assert np.isfinite(out["iter_batch_acc"]).all() and "iter_train_acc" not in out


class _KilledError(Exception):
    pass


def test_eval_every_records_across_epochs_survive_a_resume(tmp_path):
    ds, split = _toy(meta={"super_class": np.array([0, 0, 1])})
    spec = _spec(loss="two_scale", eval_every=5, epochs=4)
    whole = fit_torch(spec, ds, split, **QUIET)
    assert len(whole["iter_iteration"]) == 28 // 5 and "test_superclass_acc" in whole

    def kill(epoch):
        if epoch == 1:
            raise _KilledError

    with pytest.raises(_KilledError):
        fit_torch(spec, ds, split, checkpoint_dir=tmp_path, on_epoch=kill, **QUIET)
    resumed = fit_torch(spec, ds, split, checkpoint_dir=tmp_path, **QUIET)
    assert resumed.keys() == whole.keys()
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)


def test_super_class_columns_only_with_a_map():
    plain_ds, split = _toy()
    ds, _ = _toy(meta={"super_class": np.array([0, 0, 1])})
    out = fit_torch(_spec(), ds, split, **QUIET)
    plain = fit_torch(_spec(), plain_ds, split, **QUIET)
    assert "test_superclass_acc" not in plain
    for key in plain:
        np.testing.assert_array_equal(out[key], plain[key], err_msg=key)
    for sp in ("train", "val", "test"):
        assert (out[f"{sp}_superclass_acc"] >= out[f"{sp}_acc"]).all()
        assert (out[f"{sp}_superclass_acc_at_0.01"] >= out[f"{sp}_acc_at_0.01"]).all()


def test_cli_writes_iterations_csv(tmp_path, monkeypatch):
    """The CLI writes the grid runner's iteration table (here a one-run stand-in for
    ``train_specs`` built from ``fit_torch`` and the table functions)."""
    import bench.train._run as run_module
    from bench.cli import main
    from bench.train._tables import epochs_table, iterations_table, summary_table

    def train_specs(specs, dataset, **kwargs):
        (spec,) = specs
        split = dataset.splits(spec.protocol)[spec.fold]
        arrays = {k: v[:, None, None, None] for k, v in fit_torch(spec, dataset, split,
                                                                  **QUIET).items()}
        keys = (dataset.name, spec.model, spec.fold, [spec.seed], [spec.method], [spec.lr])
        epochs = {k: v for k, v in arrays.items() if not k.startswith("iter_")}
        result = run_module.RunResult(
            epochs_table(epochs, *keys), summary_table(epochs, *keys),
            {"per_model_losses": [spec.method], "trainers": {spec.method: "torch"},
             "train_seconds": 0.0, "model_steps": 0})
        result.iterations = iterations_table(arrays, *keys)
        return result

    monkeypatch.setattr(run_module, "train_specs", train_specs)
    out = tmp_path / "out"
    assert main(["train", "--dataset", "digits", "--model", "linear", "--losses", "one_scale",
                 "--lrs", "0.05", "--seeds", "0", "--epochs", "2", "--batch-size", "64",
                 "--protocol", "random", "--eval-every", "6", "--device", "cpu",
                 "--no-progress", "--out", str(out)]) == 0
    table = pd.read_csv(out / "iterations.csv")
    n_batches = math.ceil(1150 / 64)  # digits, protocol random: 1150 training rows
    assert list(table["iteration"]) == list(range(6, 2 * n_batches + 1, 6))
    assert {"loss", "lr", "seed", "epoch", "train_loss", "batch_acc", "val_acc",
            "test_acc", "test_top5", "test_acc_at_0.04"} <= set(table.columns)
    assert (table["loss"] == "one_scale").all()
