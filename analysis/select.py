"""The slice of a protocol's scores that one analysis folder ranks: one arch, one seed or all seeds.

The `mean` selection keeps every seed; `lossbench analyze --average-over seed` averages them per
dataset and method, as the paper's Table 4 (average of two seeds). The `blocks` selection keeps
every seed as its own block (``dataset`` becomes ``<dataset>/seed<N>``): with few datasets and
paired seeds (same init and data order for every loss), the seeds are the replication. The
`last` selection ranks the same dataset x seed blocks on the accuracy after the last epoch
(``last_epoch_scores``: no early stopping, as the GCE paper's Table 2 "average last epoch
accuracies", after Wang et al. 2018), read from the per-epoch table instead of scores.csv.
The paper's Table 4 rows of the same architecture are sliced beside, for the side-by-side table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis._input import require_columns
from analysis.collect import METRICS
from bench.errors import LossbenchError

PAPER_COLUMNS = ["method", "group", "wins", "delta", "mean_rank"]
SELECTION = re.compile(r"mean|blocks|last|seed(\d+)")
#: selections scored from the per-epoch table (``last_epoch_scores``), not scores.csv
FROM_EPOCHS = ("last",)
KEYS = ["dataset", "arch", "loss", "seed"]
VALUE_COLUMNS = ("noise_realised_train",)  # per-run measurements among the spec columns
# measurements of a run, not keys, in the selected table (``metrics_long`` keeps the keys)
METRIC_SOURCES = ("val_acc", "test_acc", "val_score", "test_score", "n_folds", "diverged",
                  *VALUE_COLUMNS)


def _spec_columns(epochs: pd.DataFrame) -> list[str]:
    """Spec columns that tell runs apart beyond the keys: those a job puts between ``lr`` and
    ``epoch`` (noise kind and rate, a loss parameter), and any ``noise_*`` column (a job
    without noise has none, so after concatenation they may sit elsewhere)."""
    cols = list(epochs.columns)
    between = cols[cols.index("lr") + 1:cols.index("epoch")] if "epoch" in cols else []
    noise = [c for c in cols if c.startswith("noise_")]
    return [c for c in dict.fromkeys([*between, *noise]) if c not in VALUE_COLUMNS]


def last_epoch_scores(epochs: pd.DataFrame, source: str = "epochs") -> pd.DataFrame:
    """scores.csv's layout from the per-epoch rows, every run scored after its last epoch.

    Per (dataset, arch, loss, seed, spec columns, fold) the lr is the one with the highest
    validation accuracy at the last epoch (ties: the first in the table; a diverged last epoch
    is never chosen), then folds are averaged as ``lossbench collect`` does.
    """
    need = [*KEYS, "fold", "lr", "epoch", "val_acc", "test_acc"]
    require_columns(epochs, need, source,
                    "the epochs table of `lossbench collect` (epochs.csv.gz)")
    spec = _spec_columns(epochs)
    run = [*KEYS, *spec, "fold"]
    last = epochs[epochs["epoch"] == epochs.groupby([*run, "lr"], dropna=False)["epoch"]
                  .transform("max")]
    order = last.assign(_val=last["val_acc"].fillna(-np.inf)).sort_values(
        "_val", ascending=False, kind="stable")  # stable: ties keep the table's lr order
    best = order.drop_duplicates(subset=run, keep="first")
    values = {c: (c, "mean") for c in VALUE_COLUMNS if c in best.columns}
    scores = best.groupby([*KEYS, *spec], sort=True, dropna=False).agg(
        n_folds=("fold", "nunique"), val_acc=("val_acc", "mean"),
        test_acc=("test_acc", "mean"), **values).reset_index()
    scores["diverged"] = scores["test_acc"].isna()
    return scores


def select_scores(scores: pd.DataFrame, arch: str, selection: str, source: str = "scores",
                  log: Callable[[str], None] = print) -> pd.DataFrame:
    """Rows of ``arch`` and ``selection`` (``mean``, ``blocks``, ``last`` or ``seedN``),
    accuracies in % (``test_acc_pct``, ``val_acc_pct``; ``test_score_pct``, ``val_score_pct``
    for a dataset's official metric, x 100 as GLUE reports MCC and F1). For ``last``,
    ``scores`` is ``last_epoch_scores`` of the epochs table.

    Cells whose every lr diverged have no score: they are left out (analyze drops and reports
    the dataset) and each is named through ``log``.
    """
    match = SELECTION.fullmatch(selection)
    if match is None:
        raise LossbenchError(f"--selection: expected 'mean', 'blocks', 'last' or 'seed<N>'; got "
                             f"{selection!r}")
    require_columns(scores, ("arch", "seed", "val_acc", "test_acc"), source,
                    "the scores.csv of `lossbench collect`")
    scores = scores[scores["arch"] == arch]
    if match.group(1) is not None:
        scores = scores[scores["seed"] == int(match.group(1))]
    if scores.empty:
        raise LossbenchError(
            f"{source}: no rows for arch={arch}, {selection}; "
            "expected the train jobs of this arch and seed"
        )
    scores = scores.assign(test_acc_pct=100 * scores["test_acc"],
                           val_acc_pct=100 * scores["val_acc"])
    for split in ("test", "val"):  # the official metric (GLUE's MCC / F1), as GLUE prints it
        if f"{split}_score" in scores.columns:
            scores[f"{split}_score_pct"] = 100 * scores[f"{split}_score"]
    for col in [c for c in scores.columns if METRICS.fullmatch(c)]:  # top-k, close-enough
        scores[f"{col}_pct"] = 100 * scores[col]
    if selection in ("blocks", "last"):
        scores = scores.assign(dataset=scores["dataset"] + "/seed" + scores["seed"].astype(str))
    for row in scores[scores["test_acc"].isna()].itertuples():
        log(f"no score (every lr diverged): {row.dataset} {row.loss} seed {row.seed}")
    return scores.dropna(subset=["test_acc"])


def metrics_long(selected: pd.DataFrame, metrics: list[str], source: str = "scores",
                 log: Callable[[str], None] = print) -> pd.DataFrame:
    """Selected scores in long form, one row per (run, metric) with its ``value``: what
    ``lossbench analyze --group-by metric --score-col value`` ranks, one analysis per metric.

    A metric undefined on a dataset (top-k with k >= its number of classes: always 100 %) has
    no value there: that dataset is left out of that metric's analysis and named through
    ``log``, never ranked on a constant.
    """
    missing = [m for m in metrics if m not in selected.columns]
    if missing:
        known = [c for c in selected.columns if c.endswith("_pct")]
        raise LossbenchError(f"{source}: no metric column(s) {', '.join(missing)}; known: "
                             f"{', '.join(known)}")
    keys = [c for c in selected.columns if not c.endswith("_pct") and c not in METRIC_SOURCES
            and not METRICS.fullmatch(c)]
    frames = []
    for metric in metrics:
        part = selected[keys].assign(metric=metric, value=selected[metric])
        undefined = sorted(part.loc[part["value"].isna(), "dataset"].unique())
        if undefined:
            log(f"{metric}: undefined on {len(undefined)} dataset(s), left out: "
                f"{', '.join(map(str, undefined))}")
        frames.append(part.dropna(subset=["value"]))
    return pd.concat(frames, ignore_index=True)


def paper_slice(paper: pd.DataFrame, group: str, source: str = "paper table") -> pd.DataFrame:
    """The paper's rows of one group (architecture), without the group column."""
    require_columns(paper, PAPER_COLUMNS, source, str(PAPER_COLUMNS))
    return paper[paper["group"] == group].drop(columns="group")
