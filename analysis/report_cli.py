"""`lossbench report`: write results/README.md from a results folder (see analysis.report)."""

from __future__ import annotations

import argparse

HELP = "Write the reproduction report (results/README.md) from a pipeline results folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-dir", default="results",
                        help="results folder written by the pipeline (default: results)")
    parser.add_argument("--out", default=None,
                        help="report path (default: RESULTS_DIR/README.md)")
    parser.add_argument("--paper-table", default=None,
                        help="the paper's table (method,group,wins,delta,mean_rank) of the first "
                             "study (default: the packaged copy, the mixing paper's Table 4); "
                             "'' to leave it out")
    parser.add_argument("--baseline", default=None,
                        help="baseline loss id of the first study (default: its spec's, ce)")
    parser.add_argument("--studies", default=None,
                        help="studies table (name,status,reason,claims; default: the packaged "
                             "one, analysis/claims/studies.csv)")


def run(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    out = write_report(args.results_dir, args.out, args.paper_table or None, args.baseline,
                       paper=args.paper_table != "", studies=args.studies)
    print(f"wrote {out}")
    return 0
