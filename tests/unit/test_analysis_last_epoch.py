"""The `last` selection: every run scored after its last epoch (GCE paper Table 2), from the
collected per-epoch table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _collect_jobs import EPOCHS, LRS, make_runs

from analysis.select import last_epoch_scores, select_scores
from bench.cli import main
from bench.errors import LossbenchError


def _epochs() -> pd.DataFrame:
    """Two datasets (one with noise columns), 2 folds, 2 lrs, 3 epochs; known last epochs."""
    rows = []
    for dataset, noise in (("c10", ("uniform", 0.4)), ("open", (None, np.nan))):
        for fold in (0, 1):
            for lr in (0.1, 0.01):
                for epoch in range(3):
                    val = 0.5 + 0.1 * epoch + (0.05 if lr == 0.01 else 0) + 0.01 * fold
                    if dataset == "open" and lr == 0.01 and epoch == 2:
                        val = np.nan  # a diverged last epoch is never chosen
                    rows.append({"dataset": dataset, "arch": "cnn", "fold": fold, "seed": 0,
                                 "loss": "ce", "lr": lr, "noise_kind": noise[0],
                                 "noise_rate": noise[1], "noise_realised_train": 0.39,
                                 "epoch": epoch, "val_acc": val,
                                 "test_acc": 0.3 + 0.1 * epoch + lr + 0.1 * fold})
    return pd.DataFrame(rows)


def test_last_epoch_scores_pick_the_lr_by_last_val_and_average_folds():
    scores = last_epoch_scores(_epochs())
    by = scores.set_index("dataset")
    assert list(scores.columns) == ["dataset", "arch", "loss", "seed", "noise_kind",
                                    "noise_rate", "n_folds", "val_acc", "test_acc",
                                    "noise_realised_train", "diverged"]
    # c10: lr 0.01 has the higher last val (0.75 + fold); its last test is 0.51 + 0.1 fold
    assert by.loc["c10", "test_acc"] == pytest.approx(np.mean([0.51, 0.61]))
    assert by.loc["c10", "val_acc"] == pytest.approx(np.mean([0.75, 0.76]))
    # open: lr 0.01 diverged at its last epoch, so lr 0.1 (test 0.6 + 0.1 fold) is taken
    assert by.loc["open", "test_acc"] == pytest.approx(np.mean([0.6, 0.7]))
    assert by.loc["c10", "noise_kind"] == "uniform" and by.loc["c10", "n_folds"] == 2
    assert not scores["diverged"].any()


def test_last_selection_is_dataset_by_seed_blocks():
    selected = select_scores(last_epoch_scores(_epochs()), "cnn", "last", log=lambda m: None)
    assert sorted(selected["dataset"]) == ["c10/seed0", "open/seed0"]
    assert (selected["test_acc_pct"] == 100 * selected["test_acc"]).all()
    with pytest.raises(LossbenchError, match="missing column.*epoch"):
        last_epoch_scores(_epochs().drop(columns="epoch"))


def test_select_last_reads_the_epochs_table_beside_scores(tmp_path: Path, capsys):
    make_runs(tmp_path / "runs")
    main(["collect", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "p")])
    out = tmp_path / "last.csv"
    assert main(["select", str(tmp_path / "p" / "scores.csv"), "--arch", "linear",
                 "--selection", "last", "--out", str(out)]) == 0
    selected = pd.read_csv(out)
    epochs = pd.read_csv(tmp_path / "p" / "epochs.csv.gz")
    row = selected[(selected["dataset"] == "wine/seed1") & (selected["loss"] == "el")].iloc[0]
    last = epochs[(epochs["dataset"] == "wine") & (epochs["arch"] == "linear")
                  & (epochs["seed"] == 1) & (epochs["loss"] == "el")
                  & (epochs["epoch"] == EPOCHS - 1)]
    expected = []
    for _, fold in last.groupby("fold"):
        vals = [fold.loc[fold["lr"] == lr, "val_acc"].iloc[0] for lr in sorted(LRS)]
        best = sorted(LRS)[int(np.argmax(vals))]
        expected.append(fold.loc[fold["lr"] == best, "test_acc"].iloc[0])
    assert row["test_acc_pct"] == pytest.approx(100 * np.mean(expected))
    (tmp_path / "p" / "epochs.csv.gz").unlink()
    assert main(["select", str(tmp_path / "p" / "scores.csv"), "--arch", "linear",
                 "--selection", "last", "--out", str(out)]) == 2
    assert "epochs.csv.gz: no such file" in capsys.readouterr().err
