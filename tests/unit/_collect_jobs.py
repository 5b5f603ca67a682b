"""Synthetic per-job folders as `lossbench train` + Snakemake leave them (for the collect tests).

Two folds (klambauer4-like), one diverged model (NaN scores), a benchmark file without memory
(`-`), a settings key that differs between jobs and fixed mtimes, so collected bytes are stable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = ("iris", "wine", "zoo")
ARCHS = ("linear", "mlp")
LOSSES = ("ce", "el")
SEEDS = (0, 1)
FOLDS = (0, 1)
LRS = (0.01, 0.001)
EPOCHS = 3


def make_job(runs: Path, dataset: str, index: int) -> Path:
    rng = np.random.default_rng(index)
    folder = runs / dataset
    folder.mkdir(parents=True)
    epochs, summary = [], []
    for arch in ARCHS:
        for fold in FOLDS:
            for seed in SEEDS:
                for loss in LOSSES:
                    for lr in LRS:
                        for epoch in range(EPOCHS):
                            epochs.append({
                                "dataset": dataset, "arch": arch, "fold": fold, "seed": seed,
                                "loss": loss, "lr": lr, "epoch": epoch, "diverged": False,
                                "train_loss": rng.random() * 3, "val_acc": rng.random(),
                                "test_acc": rng.random(), "val_mean_py": rng.random() / 7,
                            })
                    diverged = dataset == "zoo" and arch == "mlp" and loss == "el" and seed == 1
                    summary.append({
                        "dataset": dataset, "arch": arch, "loss": loss, "seed": seed,
                        "fold": fold, "lr": np.nan if diverged else LRS[seed],
                        "best_epoch": -1 if diverged else int(rng.integers(EPOCHS)),
                        "val_acc": np.nan if diverged else rng.random(),
                        "test_acc": np.nan if diverged else rng.random(),
                        "diverged": diverged, "n_lrs_diverged": 2 if diverged else 0,
                        "train_loss": rng.random() * 3,
                    })
    pd.DataFrame(epochs).to_csv(folder / "epochs.csv", index=False, float_format="%.6g")
    pd.DataFrame(summary).to_csv(folder / "summary.csv", index=False, float_format="%.6g")
    config = {"dataset": dataset, "archs": list(ARCHS), "losses": list(LOSSES),
              "lrs": list(LRS), "seeds": list(SEEDS), "epochs": EPOCHS, "batch_size": 8,
              "protocol": "klambauer4", "n_samples": 100 + index, "wall_time_s": 1.5 * index,
              "threads": 1 if index < 2 else 2, "out": str(folder)}
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    rss = "-" if index == 1 else f"{250.5 + index:.2f}"
    (folder / "benchmark.tsv").write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        f"{2.25 + index:.4f}\t0:00:02\t{rss}\t900.1\t200.2\t210.3\t0.0\t1.2\t95.5\t2.1\n")
    stamp = 1_700_000_000 + 37 * index
    for path in folder.iterdir():
        os.utime(path, (stamp, stamp))
    return folder


def make_runs(runs: Path) -> list[Path]:
    """One job folder per dataset under ``runs``; returns them in dataset order."""
    return [make_job(runs, name, i) for i, name in enumerate(DATASETS)]
