"""Forward correction's T-hat estimates of a noise study, collected and scored.

A train job that runs ``forward`` without a given T on the stacked engine writes
``transitions.csv`` beside its summary (``bench.train._run``): one row per entry (i, j) of each
T-hat, estimated (anchor points, 97th percentile; Patrini et al. 2017) from the training-set
softmax of the CE model the protocol selects at that (noise level, seed), beside the true T
the labels were corrupted with. Those files stay in the gitignored runs/ folder; this module
writes what is committed:

transitions.csv.gz    every job's rows, sorted by (dataset, arch, fold, seed, noise_kind,
                      noise_rate, i, j); gzip without name or time, values to 6 significant
                      digits (what the job files hold), so reruns give identical bytes
transition_error.csv  per (arch, noise_kind, noise_rate): how many estimates (one per dataset
                      x fold x seed), and the mean and median over them of the mean absolute
                      error |T_hat - T_true| over the C x C entries (``mae``) and over the
                      diagonal (``diag_mae``: the kept-label probabilities), the mean signed
                      diagonal error (``diag_bias``, > 0: T-hat keeps labels more than T does),
                      and how many estimates are the identity because every CE reference run
                      diverged (``n_reference_diverged``: forward then trains as plain CE)

Reads tables only (no torch, no training code).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._input import require_columns
from bench.errors import LossbenchError
from bench.io import write_csv

COLUMNS = ("dataset", "arch", "fold", "seed", "noise_kind", "noise_rate", "reference",
           "reference_lr", "reference_epoch", "i", "j", "T_true", "T_hat")
ESTIMATE = ["dataset", "arch", "fold", "seed", "noise_kind", "noise_rate"]  # one T-hat
LEVEL = ["arch", "noise_kind", "noise_rate"]
CLEAN = "none"  # noise_kind of the clean runs (listed first)
ERROR_COLUMNS = ["arch", "noise_kind", "noise_rate", "n_estimates", "n_datasets",
                 "n_reference_diverged", "mae_mean", "mae_median", "diag_mae_mean",
                 "diag_mae_median", "diag_bias_mean"]
TABLE_FLOAT_FORMAT = "%.6g"  # the job files' precision (bench.train._tables.FLOAT_FORMAT)
ERROR_FLOAT_FORMAT = "%.6g"
OUTPUTS = ("transitions.csv.gz", "transition_error.csv")


def read_transitions(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Every job's transitions.csv, checked (columns, one complete C x C matrix per estimate,
    no estimate twice) and sorted; a missing or malformed file is one line naming it."""
    if not paths:
        raise LossbenchError("no transitions.csv given; expected one per train job")
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise LossbenchError(
                f"{path}: no such file; expected the T-hat estimates `lossbench train` writes "
                "beside summary.csv when forward (no T) trains on the stacked engine after "
                "the job's CE")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise LossbenchError(f"{path}: not a CSV table ({err})") from None
        require_columns(frame, COLUMNS, path, ", ".join(COLUMNS))
        _check_matrices(frame, path)
        frames.append(frame[list(COLUMNS)])
    table = pd.concat(frames, ignore_index=True)
    twice = table.duplicated([*ESTIMATE, "i", "j"])
    if twice.any():
        row = table[twice].iloc[0]
        raise LossbenchError(
            "transitions: the estimate of " + ", ".join(f"{k}={row[k]}" for k in ESTIMATE)
            + " is in more than one file; expected each job's own (dataset, arch) runs")
    return table.sort_values([*ESTIMATE, "i", "j"], kind="stable").reset_index(drop=True)


def _check_matrices(frame: pd.DataFrame, path: Path) -> None:
    """Each estimate's rows are the C x C entries (i, j) of one matrix, each once."""
    for key, part in frame.groupby(ESTIMATE, sort=False, dropna=False):
        n = int(part["i"].max()) + 1 if len(part) else 0
        cells = set(zip(part["i"], part["j"], strict=True))
        if len(part) != n * n or cells != {(i, j) for i in range(n) for j in range(n)}:
            where = ", ".join(f"{k}={v}" for k, v in zip(ESTIMATE, key, strict=True))
            raise LossbenchError(f"{path}: the rows of ({where}) are not the entries (i, j) "
                                 f"of one {n} x {n} matrix, each once")


def estimate_errors(table: pd.DataFrame) -> pd.DataFrame:
    """One row per estimate: ``mae`` (mean |T_hat - T_true| over all entries), ``diag_mae``
    and ``diag_bias`` (mean absolute and signed error on the diagonal), ``reference_diverged``
    (every CE reference run diverged: T-hat is the identity, ``reference_epoch`` 0)."""
    diff = table["T_hat"] - table["T_true"]
    on_diag = table["i"] == table["j"]
    frame = table[ESTIMATE].assign(
        abs_err=diff.abs(), diag_abs=diff.abs().where(on_diag), diag_err=diff.where(on_diag),
        reference_diverged=table["reference_epoch"] <= 0)
    return frame.groupby(ESTIMATE, sort=True, dropna=False).agg(
        mae=("abs_err", "mean"), diag_mae=("diag_abs", "mean"), diag_bias=("diag_err", "mean"),
        reference_diverged=("reference_diverged", "all")).reset_index()


def transition_error(table: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, noise_kind, noise_rate): the estimates' errors summarised over datasets,
    folds and seeds (module docstring); clean first, then by kind and rate."""
    per = estimate_errors(table)
    out = per.groupby(LEVEL, sort=True, dropna=False).agg(
        n_estimates=("mae", "size"), n_datasets=("dataset", "nunique"),
        n_reference_diverged=("reference_diverged", "sum"),
        mae_mean=("mae", "mean"), mae_median=("mae", "median"),
        diag_mae_mean=("diag_mae", "mean"), diag_mae_median=("diag_mae", "median"),
        diag_bias_mean=("diag_bias", "mean")).reset_index()
    order = np.lexsort((out["noise_rate"].to_numpy(), out["noise_kind"].astype(str).to_numpy(),
                        (out["noise_kind"] != CLEAN).to_numpy(),
                        out["arch"].astype(str).to_numpy()))
    return out.iloc[order][ERROR_COLUMNS].reset_index(drop=True)


def write_transitions(paths: Sequence[str | os.PathLike], out: str | os.PathLike
                      ) -> dict[str, Path]:
    """Read the jobs' transitions.csv and write ``OUTPUTS`` into ``out``."""
    out = Path(out)
    table = read_transitions(paths)
    return {
        "transitions.csv.gz": write_csv(out / "transitions.csv.gz", table,
                                        float_format=TABLE_FLOAT_FORMAT),
        "transition_error.csv": write_csv(out / "transition_error.csv",
                                          transition_error(table),
                                          float_format=ERROR_FLOAT_FORMAT),
    }
