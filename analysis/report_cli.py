"""`lossbench report`: write results/README.md from a results folder (see analysis/report.py)."""

from __future__ import annotations

import argparse

HELP = "Write the reproduction report (results/README.md) from a pipeline results folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-dir", default="results",
                        help="results folder written by the pipeline (default: results)")
    parser.add_argument("--out", default=None,
                        help="report path (default: RESULTS_DIR/README.md)")
    parser.add_argument("--paper-table", default="analysis/paper_tables/mixing_table4.csv",
                        help="the paper's Table 4 (method,group,wins,delta,mean_rank); "
                             "'' to leave it out")
    parser.add_argument("--baseline", default="ce", help="baseline loss id (default: ce)")


def run(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    out = write_report(args.results_dir, args.out, args.paper_table or None, args.baseline)
    print(f"wrote {out}")
    return 0
