"""A model, a dataset (from arrays) and a loss registered in one user file train through
`lossbench train` without editing any other file (README: "Add your own ...")."""

import textwrap

import pandas as pd
import pytest

from bench.cli import main

PLUGIN = textwrap.dedent('''
    import numpy as np
    import torch
    from torch import nn

    from bench.data import ArrayDataset, register_dataset
    from bench.losses import Loss, register_loss
    from bench.models import register_model


    @register_dataset("plugin_blobs", family="user")
    def blobs(source=None):
        rng = np.random.default_rng(0)
        centres = rng.normal(scale=3.0, size=(3, 4))
        y = np.repeat(np.arange(3), 40)
        X = (centres[y] + rng.normal(size=(120, 4))).astype(np.float32)
        return ArrayDataset("plugin_blobs", X, y, 3, family="user")


    @register_model("plugin_tanh_net", family="user")
    def tanh_net(input_shape, n_classes, width=6):
        return nn.Sequential(nn.Linear(input_shape[0], width), nn.Tanh(),
                             nn.Linear(width, n_classes))


    @register_loss("plugin_brier")
    class Brier(Loss):
        def per_sample(self, logits, target, progress=0.0, **extra):
            onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
            return ((logits.softmax(-1) - onehot) ** 2).sum(-1)
''')


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "my_study.py"
    path.write_text(PLUGIN)
    return str(path)


def _train(plugin, out, *args):
    code = main(["--plugin", plugin, "train", "--dataset", "plugin_blobs", "--protocol",
                 "random", "--epochs", "3", "--lrs", "0.1", "--seeds", "0", "--no-progress",
                 "--out", str(out), *args])
    assert code == 0
    return pd.read_csv(out / "summary.csv")


def test_user_model_dataset_and_loss_train(plugin, tmp_path):
    summary = _train(plugin, tmp_path / "a", "--model", "plugin_tanh_net,mlp",
                     "--losses", "plugin_brier,ce")
    assert set(summary["arch"]) == {"plugin_tanh_net", "mlp"}
    assert set(summary["loss"]) == {"plugin_brier", "ce"}
    assert summary["test_acc"].notna().all()
    # a model parameter reaches the model: a wider net gives other numbers
    wide = _train(plugin, tmp_path / "b", "--model", "plugin_tanh_net", "--losses",
                  "plugin_brier", "--model-param", "width=12")
    narrow = summary[summary["arch"] == "plugin_tanh_net"]
    assert wide["train_loss"].iloc[0] != narrow[narrow["loss"] == "plugin_brier"][
        "train_loss"].iloc[0]


def test_unknown_plugin_file_is_one_line(tmp_path, capsys):
    code = main(["--plugin", str(tmp_path / "nope.py"), "train", "--dataset", "iris",
                 "--model", "mlp", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "plugin" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_loss_param_changes_the_result(tmp_path):
    pytest.importorskip("bench.data")
    import os

    if not os.environ.get("LOSSBENCH_UCI121"):
        pytest.skip("needs the UCI-121 source (LOSSBENCH_UCI121)")
    rows = {}
    for q in ("0.3", "0.9"):
        out = tmp_path / q
        assert main(["train", "--dataset", "iris", "--model", "linear", "--losses", "gce",
                     "--loss-param", f"q={q}", "--epochs", "3", "--lrs", "0.01", "--seeds",
                     "0", "--no-progress", "--out", str(out)]) == 0
        rows[q] = pd.read_csv(out / "summary.csv").iloc[0]
    assert rows["0.3"]["loss"] == "gce(q=0.3)"
    assert rows["0.3"]["train_loss"] != rows["0.9"]["train_loss"]
