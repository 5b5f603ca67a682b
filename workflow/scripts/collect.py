"""Collect the per-job tables of one protocol into results/uci/<protocol>/.

summary.csv   every (dataset, arch, loss, seed, fold) row of the train jobs
epochs.csv.gz the per-epoch rows (gzip with mtime 0, so reruns give identical bytes), metrics to 4
              significant digits to keep the committed file small (per-job files keep 6)
scores.csv    summary averaged over folds (protocols klambauer4/kfold4 have 4): what analysis ranks
timings.csv   wall time and peak memory of each train job (Snakemake benchmark files)
settings.json the training settings the jobs report (config.json), identical across jobs
"""

import json
import os
from pathlib import Path

import pandas as pd
from pipeline_io import run_logged

from bench.errors import LossbenchError
from bench.io import write_csv, write_text

KEYS = ["dataset", "arch", "loss", "seed"]
EPOCHS_FLOAT_FORMAT = "%.4g"  # learning curves; the selection uses the per-job files
# config.json keys that differ between jobs by nature (not a settings mismatch)
PER_JOB = {"dataset", "out", "wall_time_s", "train_seconds", "model_steps", "n_samples",
           "n_features", "n_classes"}
REQUIRED = [*KEYS, "fold", "lr", "best_epoch", "val_acc", "test_acc", "diverged"]


def read_summaries(paths: list[str]) -> pd.DataFrame:
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise LossbenchError(
                f"{path}: missing column(s) {', '.join(missing)}; expected at least {REQUIRED}"
            )
        frames.append(frame)
    summary = pd.concat(frames, ignore_index=True)
    return summary.sort_values([*KEYS, "fold"], kind="stable").reset_index(drop=True)


def fold_average(summary: pd.DataFrame) -> pd.DataFrame:
    """One score per (dataset, arch, loss, seed): the mean over folds, as the paper's protocol."""
    grouped = summary.groupby(KEYS, sort=True)
    scores = grouped.agg(
        n_folds=("fold", "nunique"),
        val_acc=("val_acc", "mean"),
        test_acc=("test_acc", "mean"),
        diverged=("diverged", "any"),
    ).reset_index()
    if scores["n_folds"].nunique() > 1:
        counts = scores.groupby("dataset")["n_folds"].first()
        raise LossbenchError(
            f"summary: datasets have different fold counts {counts.value_counts().to_dict()}; "
            "expected one protocol per table"
        )
    return scores


def read_timings(paths: list[str], summaries: list[str]) -> pd.DataFrame:
    rows = []
    for bench_path, summary_path in zip(paths, summaries, strict=True):
        run = Path(summary_path).parent
        bench = pd.read_csv(bench_path, sep="\t").iloc[0]
        end = os.path.getmtime(bench_path)
        archs = json.loads((run / "config.json").read_text()).get("archs", [])
        rows.append({
            "dataset": run.name,
            "arch": "+".join(archs),
            "seconds": float(bench["s"]),
            "max_rss_mb": float(bench["max_rss"]) if bench["max_rss"] != "-" else None,
            # start/end (unix time) let the report estimate the elapsed time of parallel jobs
            "start": end - float(bench["s"]),
            "end": end,
        })
    return pd.DataFrame(rows).sort_values(["dataset", "arch"]).reset_index(drop=True)


def common_settings(paths: list[str]) -> dict:
    """Settings shared by every job; a key that differs (other than dataset/arch) is listed."""
    configs = [json.loads(Path(p).read_text()) for p in paths]
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


def main() -> None:
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    summary = read_summaries(list(sm.input.summaries))
    epochs = pd.concat([pd.read_csv(p) for p in sm.input.epochs], ignore_index=True)
    write_csv(sm.output.summary, summary)
    write_csv(sm.output.epochs, epochs, float_format=EPOCHS_FLOAT_FORMAT)
    write_csv(sm.output.scores, fold_average(summary))
    write_csv(sm.output.timings,
              read_timings(list(sm.input.benchmarks), list(sm.input.summaries)))
    settings = common_settings(list(sm.input.configs))
    settings["protocol"] = sm.wildcards.protocol
    write_text(sm.output.settings,
               json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n")
    print(f"collected {len(summary)} rows from {len(sm.input.summaries)} jobs")


run_logged(main, snakemake.log[0] if snakemake.log else None)  # noqa: F821
