"""The engine on real UCI data: stacked == torch trainer per epoch, byte-identical reruns,
CLI errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bench.data as data
from bench.cli import main
from bench.losses import make_loss
from bench.noise import corrupt_split
from bench.spec import RunSpec
from bench.train import StackSpec, fit_torch_grid, train_stack

pytestmark = pytest.mark.real_data

PAPER = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]


@pytest.mark.parametrize(("name", "arch"), [("glass", "mlp")])
def test_stack_equals_torch_trainer_on_real_data(name, arch, uci_source, splits_source):
    """The six paper losses (iris and breast-tissue, both archs, are in
    tests/unit/test_torch_trainer.py); 8 epochs: 0to05 switches phase at epochs 2, 3, 4, 6, 7."""
    ds = data.load(name, uci_source, splits_source)
    split = ds.splits("klambauer")[0]
    spec = StackSpec(arch=arch, losses=[make_loss(i) for i in PAPER], lrs=[0.01],
                     seeds=[0], epochs=8)
    stack = train_stack(spec, ds.X, ds.y, ds.n_classes, split)
    base = RunSpec(dataset=name, model=arch, epochs=8, device="cpu", progress=False)
    per_model = fit_torch_grid(base, [(i, {}) for i in PAPER], spec.lrs, spec.seeds, ds, split,
                               log=lambda msg: None)
    for key in stack:
        np.testing.assert_allclose(stack[key], per_model[key], atol=1e-5, rtol=1e-4,
                                   err_msg=key)


def _train(out, uci_source, splits_source, *extra):
    return main(["train", "--dataset", "lenses", "--arch", "mlp", "--epochs", "4",
                 "--seeds", "0,1", "--out", str(out), "--source", uci_source,
                 "--splits-source", splits_source, "--no-progress", *extra])


def test_same_command_twice_gives_identical_csvs(tmp_path, uci_source, splits_source):
    assert _train(tmp_path / "a", uci_source, splits_source) == 0
    assert _train(tmp_path / "b", uci_source, splits_source) == 0
    for name in ("epochs.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    summary = pd.read_csv(tmp_path / "a" / "summary.csv")
    assert len(summary) == 6 * 2  # losses x seeds
    assert set(summary["lr"]) <= {0.01, 0.005, 0.001}
    assert summary["test_acc"].between(0, 1).all()
    epochs = pd.read_csv(tmp_path / "a" / "epochs.csv")
    assert len(epochs) == 6 * 3 * 2 * 4  # losses x lrs x seeds x epochs
    # the summary row is the epochs row of the selected lr and epoch
    row = summary.iloc[0]
    match = epochs.query("loss == @row.loss and seed == @row.seed and lr == @row.lr "
                         "and epoch == @row.best_epoch")
    assert float(match["test_acc"].iloc[0]) == pytest.approx(row["test_acc"])


@pytest.mark.parametrize(("args", "message"), [
    (["--lrs", "0.1,-1"], "--lrs"),
    (["--losses", "ce,nope"], "Unknown loss 'nope'"),
    (["--protocol", "fold9"], "--protocol"),
    (["--epochs", "0"], "--epochs"),
    (["--noise", "uniform"], "--noise"),
    (["--noise", "pair:0.2", "--noise-mapping", "cifar10"], "cifar10"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, uci_source, splits_source, capsys,
                                                args, message):
    assert _train(tmp_path, uci_source, splits_source, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lossbench train: error:") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "summary.csv").exists()


def test_protocols_with_four_folds_give_a_row_per_fold(tmp_path, uci_source, splits_source):
    assert _train(tmp_path, uci_source, splits_source, "--protocol", "kfold4",
                  "--losses", "ce,el", "--seeds", "0") == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(summary["fold"].unique()) == [0, 1, 2, 3]
    assert len(summary) == 2 * 4


def test_both_archs_in_one_job(tmp_path, uci_source, splits_source):
    assert main(["train", "--dataset", "lenses", "--arch", "linear,mlp", "--epochs", "2",
                 "--losses", "ce,el", "--seeds", "0", "--out", str(tmp_path), "--source",
                 uci_source, "--splits-source", splits_source, "--no-progress"]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.groupby("arch").size().to_dict() == {"linear": 2, "mlp": 2}
    alone = tmp_path / "mlp"
    assert main(["train", "--dataset", "lenses", "--arch", "mlp", "--epochs", "2",
                 "--losses", "ce,el", "--seeds", "0", "--out", str(alone), "--source",
                 uci_source, "--splits-source", splits_source, "--no-progress"]) == 0
    pd.testing.assert_frame_equal(summary[summary["arch"] == "mlp"].reset_index(drop=True),
                                  pd.read_csv(alone / "summary.csv"))


def test_noisy_grid_through_the_cli(tmp_path, uci_source, splits_source):
    """Noise levels as a grid axis on real data: the stacked engine and the torch trainer
    write the same tables with the noise columns; the realised flip rate is the seed's draw."""
    def train(out, trainer):
        return main(["train", "--dataset", "iris", "--arch", "mlp", "--epochs", "3",
                     "--seeds", "0,1", "--lrs", "0.01", "--losses", "ce,trunc_gce,forward",
                     "--loss-param", "forward:T=true", "--loss-param", "trunc_gce:prune_start=0.3",
                     "--noise", "none,uniform:0.4,pair:0.2", "--trainer", trainer,
                     "--out", str(out), "--source", uci_source, "--splits-source", splits_source,
                     "--no-progress"])

    assert train(tmp_path / "stacked", "stacked") == 0
    assert train(tmp_path / "torch", "torch") == 0
    for name in ("summary.csv", "epochs.csv"):
        a, b = (pd.read_csv(tmp_path / t / name) for t in ("stacked", "torch"))
        assert list(a.columns[6:9]) == ["noise_kind", "noise_rate", "noise_realised_train"]
        for col in a.columns:
            if a[col].dtype.kind == "f":
                np.testing.assert_allclose(a[col], b[col], atol=1e-5, err_msg=f"{name} {col}")
            else:
                assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    summary = pd.read_csv(tmp_path / "stacked" / "summary.csv")
    assert len(summary) == 2 * 3 * 3  # seeds x noise levels x losses
    assert set(summary["loss"]) == {"ce", "trunc_gce(prune_start=0.3)", "forward(T=True)"}
    ds = data.load("iris", uci_source, splits_source)
    split = ds.splits("klambauer")[0]
    for (kind, rate, seed), rows in summary.groupby(["noise_kind", "noise_rate", "seed"]):
        if kind == "none":
            assert rate == 0 and (rows["noise_realised_train"] == 0).all()
            continue
        y, _, info = corrupt_split(ds.y, split, ds.n_classes, kind, rate, seed=int(seed),
                                   dataset_name="iris")
        np.testing.assert_array_equal(y[split[2]], ds.y[split[2]])
        np.testing.assert_allclose(rows["noise_realised_train"], info["noise_realised_train"],
                                   atol=1e-6)  # the CSV keeps 6 digits
