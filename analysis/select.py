"""The slice of a protocol's scores that one analysis folder ranks: one arch, one seed or all seeds.

The `mean` selection keeps every seed; `lossbench analyze --average-over seed` averages them per
dataset and method, as the paper's Table 4 (average of two seeds). The `blocks` selection keeps
every seed as its own block (``dataset`` becomes ``<dataset>/seed<N>``): with few datasets and
paired seeds (same init and data order for every loss), the seeds are the replication. The
paper's Table 4 rows of the same architecture are sliced beside, for the side-by-side table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd

from bench.errors import LossbenchError

PAPER_COLUMNS = ["method", "group", "wins", "delta", "mean_rank"]
SELECTION = re.compile(r"mean|blocks|seed(\d+)")


def select_scores(scores: pd.DataFrame, arch: str, selection: str, source: str = "scores",
                  log: Callable[[str], None] = print) -> pd.DataFrame:
    """Rows of ``arch`` and ``selection`` (``mean``, ``blocks`` or ``seedN``), accuracies in %
    (``test_acc_pct``, ``val_acc_pct``; ``test_score_pct``, ``val_score_pct`` for a dataset's
    official metric, x 100 as GLUE reports MCC and F1).

    Cells whose every lr diverged have no score: they are left out (analyze drops and reports
    the dataset) and each is named through ``log``.
    """
    match = SELECTION.fullmatch(selection)
    if match is None:
        raise LossbenchError(f"--selection: expected 'mean', 'blocks' or 'seed<N>'; got "
                             f"{selection!r}")
    missing = [c for c in ("arch", "seed", "val_acc", "test_acc") if c not in scores.columns]
    if missing:
        raise LossbenchError(f"{source}: missing column(s) {', '.join(missing)}; expected the "
                             "scores.csv of `lossbench collect`")
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
    if selection == "blocks":
        scores = scores.assign(dataset=scores["dataset"] + "/seed" + scores["seed"].astype(str))
    for row in scores[scores["test_acc"].isna()].itertuples():
        log(f"no score (every lr diverged): {row.dataset} {row.loss} seed {row.seed}")
    return scores.dropna(subset=["test_acc"])


def paper_slice(paper: pd.DataFrame, group: str, source: str = "paper table") -> pd.DataFrame:
    """The paper's rows of one group (architecture), without the group column."""
    missing = [c for c in PAPER_COLUMNS if c not in paper.columns]
    if missing:
        raise LossbenchError(
            f"{source}: missing column(s) {', '.join(missing)}; expected {PAPER_COLUMNS}"
        )
    return paper[paper["group"] == group].drop(columns="group")
