"""The slice of a protocol's scores that one analysis folder ranks: one arch, one seed or all seeds.

The `mean` folder keeps every seed; `lossbench analyze --average-over seed` averages them per
dataset and method, as the paper's Table 4 (average of two seeds). The paper's Table 4 rows of
the same architecture are copied beside, for the side-by-side table.
"""

import pandas as pd
from pipeline_io import run_logged

from bench.errors import LossbenchError
from bench.io import write_csv

PAPER_COLUMNS = ["method", "group", "wins", "delta", "mean_rank"]


def main() -> None:
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    scores = pd.read_csv(sm.input.scores)
    scores = scores[scores["arch"] == sm.wildcards.arch]
    selection = sm.wildcards.selection
    if selection != "mean":
        scores = scores[scores["seed"] == int(selection.removeprefix("seed"))]
    if scores.empty:
        raise LossbenchError(
            f"{sm.input.scores}: no rows for arch={sm.wildcards.arch}, {selection}; "
            "expected the train jobs of this arch and seed"
        )
    scores = scores.assign(test_acc_pct=100 * scores["test_acc"],
                           val_acc_pct=100 * scores["val_acc"])
    lost = scores[scores["test_acc"].isna()]  # every lr diverged: analyze drops and reports it
    for row in lost.itertuples():
        print(f"no score (every lr diverged): {row.dataset} {row.loss} seed {row.seed}")
    write_csv(sm.output.scores, scores.dropna(subset=["test_acc"]))

    paper = pd.read_csv(sm.input.paper)
    missing = [c for c in PAPER_COLUMNS if c not in paper.columns]
    if missing:
        raise LossbenchError(
            f"{sm.input.paper}: missing column(s) {', '.join(missing)}; expected {PAPER_COLUMNS}"
        )
    write_csv(sm.output.paper,
              paper[paper["group"] == sm.wildcards.arch].drop(columns="group"))


run_logged(main, snakemake.log[0] if snakemake.log else None)  # noqa: F821
