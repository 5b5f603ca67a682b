"""`lossbench analyze`: a long results CSV in, every table and figure of the comparison out.

Light at import time (argparse only); pandas, scipy and matplotlib load inside `run`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

HELP = ("Compare methods over datasets from a long CSV: ranks, Friedman/Iman–Davenport, "
        "Conover–BH, Nemenyi, Wilcoxon–Holm, Bayesian signed-rank, CD diagrams, "
        "performance profile, Table 4.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="long CSV: one row per (dataset, method[, group])")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--dataset-col", default="dataset",
                        help="dataset column (default: dataset)")
    parser.add_argument("--method-col", default="method", help="method column (default: method)")
    parser.add_argument("--score-col", default="score", help="score column (default: score)")
    parser.add_argument("--group-by", default=None,
                        help="comma-separated columns; one analysis per value, written to "
                             "OUT/<col>=<value>/")
    parser.add_argument("--baseline", default=None,
                        help="method that deltas and pairwise tests compare against "
                             "(default: first method in label order)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--higher-is-better", dest="higher_is_better", action="store_true",
                           default=True, help="higher scores are better (default)")
    direction.add_argument("--lower-is-better", dest="higher_is_better", action="store_false",
                           help="lower scores are better (errors, losses)")
    parser.add_argument("--average-over", default=None,
                        help="column whose rows are averaged per (dataset, method), e.g. seed")
    parser.add_argument("--drop-incomplete", action="store_true",
                        help="drop (and report) datasets lacking a score for some method")
    parser.add_argument("--rope", type=float, default=0.5,
                        help="region of practical equivalence for the Bayesian test, in score "
                             "units (default 0.5)")
    parser.add_argument("--labels", default=None,
                        help="CSV method,label: display labels, in the order to show methods")
    parser.add_argument("--paper-table", default=None,
                        help="CSV method,wins,delta,mean_rank: reference Table 4 shown beside ours")


def _folder_name(group: dict) -> Path:
    """OUT/<col>=<value>/... (nested for several columns), with path-safe values."""
    parts = [f"{k}={re.sub(r'[^A-Za-z0-9._+-]', '_', str(v))}" for k, v in group.items()]
    return Path(*parts)


def run(args: argparse.Namespace) -> int:
    from analysis._compare import compare
    from analysis._input import read_labels, read_results
    from analysis.tables import write_outputs

    df = read_results(args.results)
    labels = read_labels(args.labels) if args.labels else None
    group_by = [c.strip() for c in args.group_by.split(",") if c.strip()] if args.group_by \
        else None
    result = compare(
        df, dataset_col=args.dataset_col, method_col=args.method_col,
        score_col=args.score_col, group_by=group_by, baseline=args.baseline,
        alpha=args.alpha, higher_is_better=args.higher_is_better,
        average_over=args.average_over, drop_incomplete=args.drop_incomplete,
        rope=args.rope, labels=labels, paper_table=args.paper_table,
    )
    out = Path(args.out)
    results = {(): result} if not group_by else result
    for key, comparison in results.items():
        folder = out / _folder_name(comparison.group) if key else out
        write_outputs(comparison, folder)
        f = comparison.friedman
        where = f" [{', '.join(f'{k}={v}' for k, v in comparison.group.items())}]" if key else ""
        dropped = f", dropped {len(comparison.dropped)}" if comparison.dropped else ""
        print(f"{folder}{where}: {f['n_methods']} methods x {f['n_datasets']} datasets"
              f"{dropped}; Friedman p = {f['p_value']:.3g}")
    return 0
