"""`lossbench select`: the scores one analysis folder ranks, and the paper's rows beside them.

Light at import time (argparse only); pandas loads inside `run`.
"""

from __future__ import annotations

import argparse

HELP = ("Slice a protocol's scores.csv to one arch and one seed (or all seeds, 'mean'), with "
        "accuracies in percent, and the paper table to the same arch.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scores", help="scores.csv written by `lossbench collect`")
    parser.add_argument("--arch", required=True, help="architecture (analysis group) to keep")
    parser.add_argument("--selection", required=True,
                        help="'seed<N>' for one seed, 'mean' for all seeds (averaged by analyze), "
                             "'blocks' for dataset x seed blocks, 'last' for those blocks scored "
                             "after the last epoch")
    parser.add_argument("--epochs", default=None,
                        help="the per-epoch table for --selection last (default: epochs.csv.gz "
                             "beside the scores file, as `lossbench collect` writes it)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated percent columns (test_acc_pct, test_top2_pct, "
                             "test_acc_at_0.05_pct, ...): write the selection in long form, one "
                             "row per run and metric (columns metric, value), for `lossbench "
                             "analyze --group-by metric --score-col value`")
    parser.add_argument("--out", required=True, help="output CSV of the selected scores")
    parser.add_argument("--paper-out", default=None,
                        help="output CSV of the paper table's rows of this arch (optional)")
    parser.add_argument("--paper-table", default=None,
                        help="the paper's table (method,group,wins,delta,mean_rank; default: "
                             "the packaged Table 4 of the mixing paper)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from analysis.report.claims import default_paper_table
    from analysis.report.read import read_paper_table
    from analysis.select import (
        FROM_EPOCHS,
        last_epoch_scores,
        metrics_long,
        paper_slice,
        select_scores,
    )
    from bench.errors import LossbenchError
    from bench.io import write_csv

    source = args.scores
    if args.selection in FROM_EPOCHS:
        source = args.epochs or str(Path(args.scores).with_name("epochs.csv.gz"))
    try:
        table = pd.read_csv(source)
    except FileNotFoundError as exc:
        raise LossbenchError(f"{source}: no such file; expected the "
                             f"{'epochs.csv.gz' if source != args.scores else 'scores.csv'} of "
                             "`lossbench collect`") from exc
    scores = last_epoch_scores(table, source) if args.selection in FROM_EPOCHS else table
    selected = select_scores(scores, args.arch, args.selection, source=source)
    if args.metrics:
        metrics = [m for m in args.metrics.split(",") if m]
        selected = metrics_long(selected, metrics, source=source)
    write_csv(args.out, selected)
    print(f"{args.out}: {len(selected)} rows ({args.arch}, {args.selection})")
    if args.paper_out:
        source = args.paper_table or default_paper_table()
        write_csv(args.paper_out, paper_slice(read_paper_table(source), args.arch, str(source)))
        print(f"{args.paper_out}: the paper's rows for {args.arch}")
    return 0
