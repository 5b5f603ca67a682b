"""The study step after training: merge the per-job tables of one protocol into its collected ones.

A job is one folder written by `lossbench train` (summary.csv, epochs.csv, config.json) plus the
Snakemake benchmark file (benchmark.tsv) when the pipeline ran it. Collected, in ``out``:

summary.csv   every (dataset, arch, loss, seed, fold) row of the jobs
epochs.csv.gz the per-epoch rows (gzip with mtime 0, so reruns give identical bytes), metrics to 4
              significant digits to keep the committed file small (per-job files keep 6)
scores.csv    summary averaged over folds (protocols klambauer4/kfold4 have 4): what analysis ranks;
              val_score/test_score too when the jobs recorded a dataset's official metric, and
              the test set's top-k, close-enough and super-class accuracies (``METRICS``)
timings.csv   wall time and peak memory of each job that has a benchmark file
settings.json the training settings the jobs report (config.json), identical across jobs

Reads tables only (no torch, no training code).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis._input import require_columns
from bench.errors import LossbenchError
from bench.io import write_csv, write_json

KEYS = ["dataset", "arch", "loss", "seed"]
VALUE_COLUMNS = ("noise_realised_train",)  # per-run measurements among the spec columns
# the dataset's official metric, when the trainer recorded one (GLUE: MCC, F1, accuracy)
SCORE_COLUMNS = ("val_score", "test_score")
# the test set's other accuracies at the selected epoch (two-scale paper, Sec. 3.1): a study's
# `metrics:` ranks them too; undefined cells (top-k with k >= C) stay empty
METRICS = re.compile(r"test_(top\d+|acc_at_[0-9.]+|superclass_acc(_at_[0-9.]+)?)")
EPOCHS_FLOAT_FORMAT = "%.4g"  # learning curves; the selection uses the per-job files
# config.json keys that differ between jobs by nature (not a settings mismatch)
PER_JOB = {"dataset", "out", "wall_time_s", "train_seconds", "model_steps", "n_samples",
           "n_features", "n_classes"}
REQUIRED = [*KEYS, "fold", "lr", "best_epoch", "val_acc", "test_acc", "diverged"]
TIMING_COLUMNS = ["dataset", "arch", "seconds", "max_rss_mb", "start", "end"]
SPLIT_COLUMNS = ["train_seconds", "run_seconds"]  # when the jobs' config.json report them
OUTPUTS = ("summary.csv", "epochs.csv.gz", "scores.csv", "timings.csv", "settings.json")


@dataclass(frozen=True)
class Job:
    """The files of one train job; ``benchmark`` is None outside the pipeline."""

    summary: Path
    epochs: Path
    config: Path
    benchmark: Path | None = None


def find_jobs(runs: str | os.PathLike) -> list[Job]:
    """Every job folder under ``runs`` (one holding a summary.csv), in name order."""
    runs = Path(runs)
    if not runs.is_dir():
        raise LossbenchError(f"{runs}: no such folder; expected the runs folder of a protocol")
    jobs = []
    for folder in sorted(p for p in runs.iterdir() if (p / "summary.csv").is_file()):
        bench = folder / "benchmark.tsv"
        jobs.append(Job(folder / "summary.csv", folder / "epochs.csv", folder / "config.json",
                        bench if bench.is_file() else None))
    if not jobs:
        raise LossbenchError(f"{runs}: no job outputs (no <job>/summary.csv); expected the "
                             "folders written by `lossbench train`")
    return jobs


def jobs_from_lists(summaries: Sequence[str], epochs: Sequence[str], configs: Sequence[str],
                    benchmarks: Sequence[str] = ()) -> list[Job]:
    """Jobs from parallel file lists (the i-th file of each list belongs to job i)."""
    if not summaries:
        raise LossbenchError("--summaries: no job outputs given; expected one summary.csv per "
                             "train job")
    lists = {"--epochs": epochs, "--configs": configs}
    if benchmarks:
        lists["--benchmarks"] = benchmarks
    for flag, files in lists.items():
        if len(files) != len(summaries):
            raise LossbenchError(f"{flag}: {len(files)} file(s) for {len(summaries)} "
                                 "--summaries; expected one per job, in the same order")
    bench = list(benchmarks) or [None] * len(summaries)
    return [Job(Path(s), Path(e), Path(c), Path(b) if b else None)
            for s, e, c, b in zip(summaries, epochs, configs, bench, strict=True)]


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise LossbenchError(f"{path}: no such file; expected a job output of `lossbench train`")
    return pd.read_csv(path, **kwargs)


def read_summaries(paths: Sequence[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        frame = _read_csv(path)
        require_columns(frame, REQUIRED, path, f"at least {REQUIRED}")
        frames.append(frame)
    summary = pd.concat(frames, ignore_index=True)
    return summary.sort_values([*KEYS, "fold"], kind="stable").reset_index(drop=True)


def spec_key_columns(summary: pd.DataFrame) -> list[str]:
    """Run-spec columns a job adds between ``lr`` and ``best_epoch`` (noise kind and rate, a
    loss parameter, ...): they tell runs apart, so scores keep them as keys. The realised
    noise rate is a measurement, not a key."""
    cols = list(summary.columns)
    if "lr" not in cols or "best_epoch" not in cols:
        return []
    return [c for c in cols[cols.index("lr") + 1:cols.index("best_epoch")]
            if c not in VALUE_COLUMNS]


def fold_average(summary: pd.DataFrame) -> pd.DataFrame:
    """One score per (dataset, arch, loss, seed[, spec keys]): the mean over folds, as the
    paper's protocol."""
    keys = [*KEYS, *spec_key_columns(summary)]
    values = {c: (c, "mean") for c in VALUE_COLUMNS if c in summary.columns}
    official = {c: (c, "mean") for c in summary.columns
                if c in SCORE_COLUMNS or METRICS.fullmatch(c)}
    grouped = summary.groupby(keys, sort=True, dropna=False)
    scores = grouped.agg(
        n_folds=("fold", "nunique"),
        val_acc=("val_acc", "mean"),
        test_acc=("test_acc", "mean"),
        **official,
        diverged=("diverged", "any"),
        **values,
    ).reset_index()
    if scores["n_folds"].nunique() > 1:
        counts = scores.groupby("dataset")["n_folds"].first()
        raise LossbenchError(
            f"summary: datasets have different fold counts {counts.value_counts().to_dict()}; "
            "expected one protocol per table"
        )
    return scores


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise LossbenchError(f"{path}: no such file; expected a job output of `lossbench train`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LossbenchError(f"{path}: not valid JSON ({exc})") from exc


def _seconds(value) -> float | None:
    """A config.json time: a number, or one per arch (summed); None if the job has none."""
    if isinstance(value, dict):
        return float(sum(value.values()))
    return None if value is None else float(value)


def read_timings(jobs: Sequence[Job]) -> pd.DataFrame:
    """Wall time and peak memory of each job that has a Snakemake benchmark file."""
    rows = []
    for job in jobs:
        if job.benchmark is None:
            continue
        run = job.summary.parent
        bench = _read_csv(job.benchmark, sep="\t").iloc[0]
        end = os.path.getmtime(job.benchmark)
        config = _read_config(run / "config.json")
        rows.append({
            "dataset": run.name,
            "arch": "+".join(config.get("archs", [])),
            "seconds": float(bench["s"]),
            "max_rss_mb": float(bench["max_rss"]) if bench["max_rss"] != "-" else None,
            # start/end (unix time) let the report estimate the elapsed time of parallel jobs
            "start": end - float(bench["s"]),
            "end": end,
            # where a job's time goes: the training loops (evaluation included), the rest of
            # `lossbench train` after start-up (tables, writes); the remainder of `seconds` is
            # process start-up, imports and data loading
            "train_seconds": _seconds(config.get("train_seconds")),
            "run_seconds": _seconds(config.get("wall_time_s")),
        })
    if not rows:
        return pd.DataFrame(columns=TIMING_COLUMNS)
    table = pd.DataFrame(rows).sort_values(["dataset", "arch"]).reset_index(drop=True)
    if table["train_seconds"].isna().all():  # jobs of an older `lossbench train`
        table = table.drop(columns=SPLIT_COLUMNS)
    return table


def common_settings(paths: Sequence[Path]) -> dict:
    """Settings shared by every job; a key that differs (other than dataset/arch) is listed."""
    configs = [_read_config(p) for p in paths]
    settings, varying = {}, {}
    for key in sorted(set().union(*configs)):
        values = [c.get(key) for c in configs]
        if all(v == values[0] for v in values):
            settings[key] = values[0]
        elif key not in PER_JOB:
            varying[key] = sorted({json.dumps(v, sort_keys=True) for v in values})
    settings.pop("dataset", None)
    settings["n_jobs"] = len(configs)
    if varying:
        settings["varying_across_jobs"] = varying
    return settings


def slim_epochs(epochs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """``epochs`` with only the per-epoch ``metrics`` after the key columns (up to ``epoch``)
    and ``diverged``: a study of ~10^5 runs keeps its curves without a 100 MB table."""
    if not metrics:
        return epochs
    unknown = [m for m in metrics if m not in epochs.columns]
    if unknown:
        raise LossbenchError(f"--epoch-metrics: no column(s) {', '.join(unknown)} in the "
                             f"epochs tables; known: {', '.join(epochs.columns)}")
    keys = list(epochs.columns[:list(epochs.columns).index("epoch") + 1])
    keep = [*keys, *[c for c in ("diverged",) if c in epochs.columns],
            *[m for m in metrics if m not in keys and m != "diverged"]]
    return epochs[keep]


def collect(jobs: Sequence[Job], out: str | os.PathLike, protocol: str,
            epoch_metrics: Sequence[str] = ()) -> dict[str, Path]:
    """Write the collected tables of ``jobs`` into ``out``; returns {file name: path}.
    ``epoch_metrics``: keep only these per-epoch metrics in epochs.csv.gz (all if empty)."""
    out = Path(out)
    summary = read_summaries([j.summary for j in jobs])
    epochs = slim_epochs(pd.concat([_read_csv(j.epochs) for j in jobs], ignore_index=True),
                         epoch_metrics)
    settings = common_settings([j.config for j in jobs])
    settings["protocol"] = protocol
    return {
        "summary.csv": write_csv(out / "summary.csv", summary),
        "epochs.csv.gz": write_csv(out / "epochs.csv.gz", epochs,
                                   float_format=EPOCHS_FLOAT_FORMAT),
        "scores.csv": write_csv(out / "scores.csv", fold_average(summary)),
        "timings.csv": write_csv(out / "timings.csv", read_timings(jobs)),
        "settings.json": write_json(out / "settings.json", settings),
    }
