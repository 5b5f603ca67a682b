"""Forward's T-hat estimates collected and scored (`lossbench transitions`,
analysis.transitions) and shown in the report (section ``transition_error``).

The jobs' transitions.csv are generated here: each T-hat is the true T plus a perturbation of
known size, so every error of transition_error.csv is known from the construction.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.report import render
from analysis.transitions import COLUMNS, ERROR_COLUMNS, transition_error
from bench.cli import main

LEVELS = [("uniform", 0.4), ("none", 0.0), ("pair", 0.2)]  # not in report order on purpose


def _true_matrix(kind: str, rate: float, c: int) -> np.ndarray:
    if kind == "uniform":
        return np.full((c, c), rate / (c - 1)) + np.eye(c) * (1 - rate - rate / (c - 1))
    return (1 - rate) * np.eye(c) + rate * np.roll(np.eye(c), 1, axis=1)  # none: rate 0


def _shift(c: int) -> np.ndarray:
    """Each row loses 1 on the diagonal and gains 1 on the next class: T + e * shift keeps
    rows summing to 1; mean |.| over the entries is 2 / c, over the diagonal 1, signed -1."""
    return -np.eye(c) + np.roll(np.eye(c), 1, axis=1)


def _rows(dataset: str, arch: str, seed: int, kind: str, rate: float, c: int, e: float,
          epoch: int = 7) -> list[dict]:
    T = _true_matrix(kind, rate, c)
    T_hat = np.eye(c) if epoch == 0 else T + e * _shift(c)
    return [{"dataset": dataset, "arch": arch, "fold": 0, "seed": seed, "noise_kind": kind,
             "noise_rate": rate, "reference": "ce",
             "reference_lr": np.nan if epoch == 0 else 0.01, "reference_epoch": epoch,
             "i": i, "j": j, "T_true": T[i, j], "T_hat": T_hat[i, j]}
            for i in range(c) for j in range(c)]


# (dataset, classes, seed) -> perturbation size e of the estimate, times the level's factor
ERRORS = {("a", 3, 0): 0.1, ("a", 3, 1): 0.2, ("b", 2, 0): 0.05, ("b", 2, 1): 0.3}
FACTOR = {"none": 1.0, "pair": 0.5, "uniform": 1.5}


def _jobs(folder: Path, diverged: tuple | None = None) -> list[Path]:
    """One transitions.csv per (dataset, arch) job, as `lossbench train` writes them;
    ``diverged`` = (dataset, seed, kind): that estimate is the identity (every CE diverged)."""
    paths = []
    for dataset, c in (("a", 3), ("b", 2)):
        for arch in ("linear", "mlp"):
            rows = []
            for kind, rate in LEVELS:
                for seed in (0, 1):
                    epoch = 0 if diverged == (dataset, seed, kind) else 7
                    rows += _rows(dataset, arch, seed, kind, rate, c,
                                  ERRORS[(dataset, c, seed)] * FACTOR[kind], epoch)
            path = folder / f"{dataset}__{arch}" / "transitions.csv"
            path.parent.mkdir(parents=True)
            pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(path, index=False)
            paths.append(path)
    return paths


def test_errors_per_level_are_those_of_the_constructed_estimates(tmp_path: Path):
    paths = _jobs(tmp_path / "runs")
    assert main(["transitions", *map(str, paths), "--out-dir", str(tmp_path / "out")]) == 0
    errors = pd.read_csv(tmp_path / "out" / "transition_error.csv")
    assert list(errors.columns) == ERROR_COLUMNS
    # clean first, then kinds alphabetically, per arch
    assert [(r.arch, r.noise_kind) for r in errors.itertuples()] == [
        (a, k) for a in ("linear", "mlp") for k in ("none", "pair", "uniform")]
    for row in errors.itertuples():
        f = FACTOR[row.noise_kind]
        mae = [f * e * 2 / c for (_, c, _), e in ERRORS.items()]  # per estimate: 2e / C
        diag = [f * e for e in ERRORS.values()]  # the diagonal is off by e in every row
        assert row.n_estimates == 4 and row.n_datasets == 2 and row.n_reference_diverged == 0
        assert row.mae_mean == pytest.approx(np.mean(mae), abs=1e-6)
        assert row.mae_median == pytest.approx(np.median(mae), abs=1e-6)
        assert row.diag_mae_mean == pytest.approx(np.mean(diag), abs=1e-6)
        assert row.diag_mae_median == pytest.approx(np.median(diag), abs=1e-6)
        assert row.diag_bias_mean == pytest.approx(-np.mean(diag), abs=1e-6)


def test_a_diverged_reference_counts_with_the_identity_as_its_estimate(tmp_path: Path):
    paths = _jobs(tmp_path / "runs", diverged=("b", 1, "uniform"))
    table = pd.concat(map(pd.read_csv, paths), ignore_index=True)
    errors = transition_error(table).set_index(["arch", "noise_kind"])
    hit = errors.loc[("linear", "uniform")]
    assert hit["n_reference_diverged"] == 1
    assert errors.loc[("linear", "pair"), "n_reference_diverged"] == 0
    # b (C = 2) at uniform 0.4: |I - T| is 0.4 in every entry
    f = FACTOR["uniform"]
    mae = [f * 0.1 * 2 / 3, f * 0.2 * 2 / 3, f * 0.05, 0.4]
    assert hit["mae_mean"] == pytest.approx(np.mean(mae))
    assert hit["diag_bias_mean"] == pytest.approx(np.mean([-f * 0.1, -f * 0.2, -f * 0.05, 0.4]))


def test_outputs_are_byte_identical_whatever_the_file_order(tmp_path: Path):
    paths = _jobs(tmp_path / "runs")
    outs = []
    for name, order in (("x", paths), ("y", paths[::-1])):
        assert main(["transitions", *map(str, order), "--out-dir", str(tmp_path / name)]) == 0
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert set(outs[0]) == {"transitions.csv.gz", "transition_error.csv"}
    assert outs[0] == outs[1]
    raw = outs[0]["transitions.csv.gz"]
    assert raw[4:8] == b"\0\0\0\0"  # gzip header: no time stamp
    table = pd.read_csv(io.BytesIO(gzip.decompress(raw)))
    source = pd.concat(map(pd.read_csv, paths), ignore_index=True)
    assert list(table.columns) == list(COLUMNS) and len(table) == len(source)
    keys = ["dataset", "arch", "fold", "seed", "noise_kind", "noise_rate", "i", "j"]
    assert table[keys].equals(source.sort_values(keys)[keys].reset_index(drop=True))
    np.testing.assert_allclose(table["T_hat"], source.sort_values(keys)["T_hat"], atol=1e-6)


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda path: path.unlink(), "no such file"),
    (lambda path: pd.read_csv(path).drop(columns="T_hat").to_csv(path, index=False),
     "missing column(s) T_hat"),
    (lambda path: pd.read_csv(path).iloc[1:].to_csv(path, index=False),
     "not the entries (i, j) of one 3 x 3 matrix"),
])
def test_a_bad_job_file_is_one_line_naming_it(tmp_path: Path, capsys, break_it, message):
    paths = _jobs(tmp_path / "runs")
    break_it(paths[0])
    assert main(["transitions", *map(str, paths), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(paths[0]) in err
    assert not (tmp_path / "out").exists()


def test_an_estimate_in_two_files_is_refused(tmp_path: Path, capsys):
    paths = _jobs(tmp_path / "runs")
    assert main(["transitions", *map(str, paths), str(paths[0]), "--out-dir",
                 str(tmp_path / "out")]) == 2
    assert "in more than one file" in capsys.readouterr().err


def _results(tmp_path: Path, losses: list[str], with_table: bool = True) -> Path:
    """A noise_uci results folder with scores and (optionally) the collected T-hat tables."""
    root = tmp_path / "results" / "noise" / "noise_uci"
    root.mkdir(parents=True)
    pd.DataFrame({"dataset": "a", "arch": "linear", "loss": losses, "seed": 0,
                  "noise_kind": "pair", "noise_rate": 0.2, "val_acc": 0.5, "test_acc": 0.5,
                  "train_acc": 0.5}).to_csv(root / "scores.csv", index=False)
    if with_table:
        assert main(["transitions", *map(str, _jobs(tmp_path / "runs")), "--out-dir",
                     str(root)]) == 0
    studies = tmp_path / "studies.csv"
    pd.DataFrame({"name": ["noise_uci"], "status": ["run"], "reason": [""],
                  "claims": ["noise_uci.yaml"]}).to_csv(studies, index=False)
    return studies


HEADING = "### Forward T-hat: estimated versus true transition matrix"


def test_report_shows_the_error_table_of_forward_t_hat(tmp_path: Path):
    studies = _results(tmp_path, ["ce", "forward"])
    section = render(tmp_path / "results", studies=studies).split(HEADING)[1].split("\n### ")[0]
    assert "anchor-point estimate (97th percentile) from the CE model the protocol" in section
    errors = pd.read_csv(tmp_path / "results/noise/noise_uci/transition_error.csv")
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) == len(errors) == 6
    first = errors.iloc[0]
    assert rows[0].startswith("| `linear` | clean | 4 (2 datasets) | "
                              f"{first['mae_mean']:.4f} | {first['mae_median']:.4f} |")
    assert any(r.startswith("| `mlp` | uniform 0.4 |") for r in rows)


def test_report_leaves_the_section_out_without_forward_t_hat(tmp_path: Path):
    studies = _results(tmp_path, ["ce", "forward(T=True)"], with_table=False)
    assert HEADING not in render(tmp_path / "results", studies=studies)


def test_report_says_the_table_is_missing_when_forward_t_hat_ran(tmp_path: Path):
    studies = _results(tmp_path, ["ce", "forward"], with_table=False)
    section = render(tmp_path / "results", studies=studies).split(HEADING)[1]
    assert section.strip().startswith("No `noise/noise_uci/transition_error.csv`")
