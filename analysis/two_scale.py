"""The two-scale study's figures (Berlyand, Creese & Jabin 2021): accuracy per iteration (Sec.
3.3, Fig. 9) and the test-set probability histograms (Sec. 3.2, Figs. 4-6).

Each torch-trainer job with ``eval_every`` and ``save_predictions_at`` writes, beside its
summary.csv, ``iterations.csv`` (one row per run and record: ``iteration``, ``epoch``,
``batch_*`` over the training batches since the previous record, ``val_*`` and ``test_*`` on
the whole split) and ``predictions/<run_id>-epoch<E>-hist.csv`` (binned counts of max p, p_y
and δp = p_y - max p over the misclassified test samples). Those stay in the gitignored runs
folder; this module makes the committed tables:

curves     per dataset, arch, method and iteration: the mean over seeds of the training-batch
           and test accuracy (%), each with a seeded percentile-bootstrap 95 % CI over seeds
           (``analysis.noise``'s), so reruns give the same bytes
histograms per dataset, arch, method, saved epoch, quantity and bin: the counts summed over
           seeds (the paper's "across 10 seeds"), with how many runs' files were summed

A hist file is named by its run's hash only, so it is attributed through its job: the
job's iterations.csv must hold one (dataset, arch, method) (``job: [dataset, model, loss]``).

Reads result tables only (no torch, no bench.train).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from analysis._input import require_columns
from analysis.noise import bootstrap_mean_ci, method_order
from bench.errors import LossbenchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RUN = ["dataset", "arch", "loss"]  # one curve, one histogram set
ITERATION_COLUMNS = (*RUN, "fold", "seed", "lr", "iteration", "epoch", "batch_acc", "test_acc")
#: the curves' metrics (iterations.csv columns) -> panel titles (Fig. 9: left, right)
METRICS = {"batch_acc": "training batch accuracy (%)", "test_acc": "test accuracy (%)"}
CURVE_COLUMNS = [*RUN, "iteration", "epoch", "n_seeds", "n_missing",
                 *(f"{m}_{s}" for m in METRICS for s in ("mean", "low", "high"))]
ITERATIONS_TABLE = "the iterations.csv of `lossbench train --eval-every N`"
HIST_COLUMNS = ("quantity", "lo", "hi", "count")
#: histogram quantities (torch_trainer.histograms) -> panel titles (Figs. 4, 5, 6)
QUANTITIES = {"max_p": "max p (all test samples)", "p_y": "p_y (all test samples)",
              "delta_p": "δp = p_y − max p (misclassified)"}
HIST_TABLE_COLUMNS = [*RUN, "epoch", "quantity", "lo", "hi", "n_runs", "count"]
HIST_METHODS = ("one_scale", "two_scale(eta=0.01)")  # the paper's pair in Figs. 4-6
_HIST_FILE = re.compile(r"^(?P<run>[0-9A-Za-z]+)-epoch(?P<epoch>\d+)-hist\.csv$")


class HistFile(NamedTuple):
    """One run's histogram file and what it belongs to (from its job)."""

    path: Path
    dataset: str
    arch: str
    loss: str
    epoch: int


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise LossbenchError(f"{path}: no such file; expected {what}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise LossbenchError(f"{path}: not a CSV table ({err})") from None


# -- inputs: the jobs' side files ---------------------------------------------------------------
def job_dirs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Job folders from job folders, their iterations.csv, or a runs folder (its jobs)."""
    out = []
    for path in map(Path, paths):
        if path.is_file() or path.name == "iterations.csv":
            out.append(path.parent)
        elif (path / "iterations.csv").exists() or (path / "summary.csv").exists():
            out.append(path)
        elif path.is_dir():
            jobs = sorted(p for p in path.iterdir()
                          if any((p / f).is_file() for f in ("iterations.csv", "summary.csv")))
            if not jobs:
                raise LossbenchError(f"{path}: no job folder (with a summary.csv) in it")
            out += jobs
        else:
            raise LossbenchError(f"{path}: no such job folder, iterations.csv or runs folder")
    return list(dict.fromkeys(out))


def read_iterations(job: Path) -> pd.DataFrame:
    """A job's iterations.csv, checked; a missing or malformed one is a line naming it."""
    path = job / "iterations.csv"
    frame = _read_csv(path, "the per-record table `lossbench train --eval-every N` writes "
                            "beside summary.csv (torch trainer)")
    require_columns(frame, ITERATION_COLUMNS, path, ITERATIONS_TABLE)
    return frame


def hist_files(job: Path, iterations: pd.DataFrame) -> list[HistFile]:
    """The job's ``predictions/*-hist.csv``, attributed to its one (dataset, arch, method)."""
    paths = sorted((job / "predictions").glob("*-hist.csv"))
    if not paths:
        return []
    runs = iterations[RUN].drop_duplicates()
    if len(runs) != 1:
        raise LossbenchError(
            f"{job}: runs of {len(runs)} (dataset, arch, method) in one job; its hist files, "
            "named by run hash only, cannot be attributed (expected job: [dataset, model, loss])")
    dataset, arch, loss = runs.iloc[0]
    out = []
    for path in paths:
        match = _HIST_FILE.match(path.name)
        if match is None:
            raise LossbenchError(f"{path}: expected a name <run_id>-epoch<E>-hist.csv")
        out.append(HistFile(path, str(dataset), str(arch), str(loss), int(match["epoch"])))
    return out


def read_jobs(paths: Sequence[str | os.PathLike]
              ) -> tuple[dict[str, pd.DataFrame], list[HistFile]]:
    """Every job's iterations table (by file name) and hist files."""
    frames, hists = {}, []
    for job in job_dirs(paths):
        frame = read_iterations(job)
        frames[str(job / "iterations.csv")] = frame
        hists += hist_files(job, frame)
    return frames, hists


def for_arch(frames: Mapping[str, pd.DataFrame], hists: Sequence[HistFile], arch: str
             ) -> tuple[dict[str, pd.DataFrame], list[HistFile]]:
    """The jobs' rows and hist files of one architecture (none: a line naming those present)."""
    kept = {k: f[f["arch"] == arch] for k, f in frames.items()}
    kept = {k: f for k, f in kept.items() if len(f)}
    if not kept:
        present = sorted({str(a) for f in frames.values() for a in f["arch"].unique()})
        raise LossbenchError(f"iterations: no rows for arch={arch!r}; archs present: "
                             f"{', '.join(present) or 'none'}")
    return kept, [h for h in hists if h.arch == arch]


# -- tables -------------------------------------------------------------------------------------
def iteration_curves(frames: Mapping[str, pd.DataFrame], seed: int = 0) -> pd.DataFrame:
    """``CURVE_COLUMNS`` from iterations tables keyed by their source (named in errors): per
    (dataset, arch, method, iteration), the seeds' mean and bootstrap CI of each ``METRICS``
    in %, over the seeds with a value there (``n_missing``: seeds without, e.g. diverged)."""
    if not frames:
        raise LossbenchError("no iterations.csv given; expected one per train job")
    for source, frame in frames.items():
        require_columns(frame, ITERATION_COLUMNS, source, ITERATIONS_TABLE)
    table = pd.concat([f[list(ITERATION_COLUMNS)] for f in frames.values()], ignore_index=True)
    twice = table.duplicated([*RUN, "fold", "seed", "lr", "iteration"])
    if twice.any():
        row = table[twice].iloc[0]
        raise LossbenchError("iterations: the run " + ", ".join(
            f"{k}={row[k]}" for k in (*RUN, "seed")) + " is in more than one file")
    settings = table.groupby(RUN)[["lr", "fold"]].nunique()
    several = settings[(settings > 1).any(axis=1)]
    if len(several):
        dataset, arch, loss = several.index[0]
        raise LossbenchError(f"iterations: {dataset}/{arch}/{loss} ran at several lrs or folds; "
                             "the curves average over seeds at one lr and fold")
    rows = []
    for i, (key, part) in enumerate(table.groupby([*RUN, "iteration"], sort=True)):
        rng = np.random.default_rng([seed, i])  # fixed per table position
        values = {m: 100 * part[m].to_numpy(dtype=float) for m in METRICS}
        stats = []
        for metric in METRICS:
            finite = values[metric][np.isfinite(values[metric])]
            stats += bootstrap_mean_ci(finite, rng) if len(finite) else [np.nan] * 3
        missing = ~np.all([np.isfinite(v) for v in values.values()], axis=0)
        rows.append([*key, float(part["epoch"].iloc[0]), len(part), int(missing.sum()),
                     *stats])
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def histogram_table(files: Sequence[HistFile]) -> pd.DataFrame:
    """``HIST_TABLE_COLUMNS``: each (dataset, arch, method, epoch)'s counts summed over its
    runs' files, which must share their bins."""
    if not files:
        raise LossbenchError("no *-hist.csv given; expected the predictions/ files of "
                             "`lossbench train --save-predictions-at E` (torch trainer)")
    groups: dict[tuple, list[HistFile]] = {}
    for file in files:
        groups.setdefault((file.dataset, file.arch, file.loss, file.epoch), []).append(file)
    parts = []
    for key in sorted(groups):
        total, bins = None, None
        for file in groups[key]:
            frame = _read_csv(file.path, "a histogram of `lossbench train --save-predictions-at`")
            require_columns(frame, HIST_COLUMNS, file.path,
                            "the columns quantity, lo, hi, count of a -hist.csv")
            unknown = sorted(set(frame["quantity"]) - set(QUANTITIES))
            if unknown:
                raise LossbenchError(f"{file.path}: unknown quantity {unknown[0]!r}; expected "
                                     f"{', '.join(QUANTITIES)}")
            if bins is None:
                bins, total = frame[["quantity", "lo", "hi"]], frame["count"].to_numpy()
            elif not frame[["quantity", "lo", "hi"]].equals(bins):
                raise LossbenchError(f"{file.path}: bins differ from {groups[key][0].path}; "
                                     "expected the same bins in every run's file")
            else:
                total = total + frame["count"].to_numpy()
        part = bins.assign(n_runs=len(groups[key]), count=total.astype(np.int64))
        parts.append(part.assign(**dict(zip([*RUN, "epoch"], key, strict=True))))
    return pd.concat(parts, ignore_index=True)[HIST_TABLE_COLUMNS]


# -- figures ------------------------------------------------------------------------------------
def _archs(table: pd.DataFrame, arch: str, what: str) -> pd.DataFrame:
    part = table[table["arch"] == arch]
    if part.empty:
        raise LossbenchError(f"no {what} for arch={arch!r}; archs present: "
                             f"{', '.join(map(str, sorted(table['arch'].unique())))}")
    return part


def _colours(order: Sequence[str]) -> dict[str, object]:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if len(order) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(order)}


#: line styles cycled per method: identical curves (one_scale and large η coincide exactly,
#: as the paper says) stay visible on top of each other
DASHES = ("-", "--", ":", "-.")


def draw_iteration_curves(curves: pd.DataFrame, arch: str,
                          labels: Mapping[str, str] | None = None) -> Figure:
    """Fig. 9: rows datasets, columns training-batch and test accuracy against iterations,
    one line per method with its CI band."""
    from matplotlib.figure import Figure

    part = _archs(curves, arch, "iteration curves")
    datasets = sorted(part["dataset"].unique())
    order = method_order(list(part["loss"].unique()), labels)
    colours = _colours(order)
    fig = Figure(figsize=(10, 3.0 * len(datasets)))
    axes = fig.subplots(len(datasets), len(METRICS), squeeze=False)
    for i, dataset in enumerate(datasets):
        cell = part[part["dataset"] == dataset]
        for ax, (metric, title) in zip(axes[i], METRICS.items(), strict=True):
            for method in order:
                line = cell[cell["loss"] == method].sort_values("iteration")
                if line.empty:
                    continue
                ax.plot(line["iteration"], line[f"{metric}_mean"], lw=1.4,
                        ls=DASHES[order.index(method) % len(DASHES)],
                        color=colours[method], label=(labels or {}).get(method, method))
                ax.fill_between(line["iteration"], line[f"{metric}_low"],
                                line[f"{metric}_high"], color=colours[method], alpha=0.15,
                                linewidth=0)
            n = sorted(cell["n_seeds"].unique())
            seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
            ax.set_title(f"{dataset}: {title}, {seeds} seeds", fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(datasets) - 1:
                ax.set_xlabel("iteration")
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"{arch}: accuracy during training (mean over seeds, bootstrap 95 % CI)")
    fig.tight_layout()
    return fig


def last_epochs(hist: pd.DataFrame, methods: Sequence[str]) -> dict[str, int]:
    """Per dataset, the last saved epoch that every one of ``methods`` has."""
    out = {}
    for dataset, part in hist.groupby("dataset", sort=True):
        common = set.intersection(*(set(part.loc[part["loss"] == m, "epoch"]) for m in methods))
        if common:
            out[str(dataset)] = int(max(common))
    return out


def draw_histograms(hist: pd.DataFrame, arch: str, methods: Sequence[str] = HIST_METHODS,
                    labels: Mapping[str, str] | None = None) -> Figure:
    """Figs. 4-6: rows datasets, columns max p, p_y and δp; the methods' counts summed over
    seeds as step histograms, at each dataset's last saved epoch."""
    from matplotlib.figure import Figure

    part = _archs(hist, arch, "histograms")
    absent = [m for m in methods if m not in set(part["loss"])]
    if absent:
        raise LossbenchError(f"histograms of arch={arch!r}: no {absent[0]!r}; methods present: "
                             f"{', '.join(sorted(part['loss'].unique()))}")
    epochs = last_epochs(part, methods)
    if not epochs:
        raise LossbenchError(f"histograms of arch={arch!r}: {', '.join(methods)} share no "
                             "saved epoch on any dataset")
    colours = _colours(list(methods))
    fig = Figure(figsize=(12, 2.8 * len(epochs)))
    axes = fig.subplots(len(epochs), len(QUANTITIES), squeeze=False)
    for i, (dataset, epoch) in enumerate(epochs.items()):
        cell = part[(part["dataset"] == dataset) & (part["epoch"] == epoch)]
        for ax, (quantity, title) in zip(axes[i], QUANTITIES.items(), strict=True):
            for method in methods:
                bins = cell[(cell["loss"] == method) & (cell["quantity"] == quantity)]
                if bins.empty:
                    continue
                edges = np.append(bins["lo"].to_numpy(), bins["hi"].to_numpy()[-1])
                ax.stairs(bins["count"].to_numpy(), edges, color=colours[method], lw=1.2,
                          label=f"{(labels or {}).get(method, method)} "
                                f"({int(bins['n_runs'].iloc[0])} runs)")
            ax.set_title(f"{dataset}, epoch {epoch}: {title}", fontsize=9)
            ax.grid(alpha=0.3)
            if quantity == next(iter(QUANTITIES)):
                ax.set_ylabel("test samples (summed over seeds)")
            ax.legend(fontsize=7, frameon=False)
    fig.suptitle(f"{arch}: test-set probabilities at the last saved epoch")
    fig.tight_layout()
    return fig
