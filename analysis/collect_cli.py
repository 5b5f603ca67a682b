"""`lossbench collect`: merge the per-job outputs of one protocol (see analysis.collect).

Light at import time (argparse only); pandas loads inside `run`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("Merge the per-job outputs of `lossbench train` (one protocol) into summary.csv, "
        "epochs.csv.gz, scores.csv (fold-averaged), timings.csv and settings.json.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True,
                        help="output folder, e.g. results/uci/klambauer (created)")
    parser.add_argument("--protocol", default=None,
                        help="protocol name recorded in settings.json (default: the --out "
                             "folder's name)")
    parser.add_argument("--runs", default=None,
                        help="folder holding one job folder per dataset (every <job>/summary.csv "
                             "is collected, with epochs.csv, config.json, benchmark.tsv beside)")
    parser.add_argument("--summaries", nargs="*", default=None, metavar="FILE",
                        help="instead of --runs: the jobs' summary.csv files ...")
    parser.add_argument("--epoch-metrics", nargs="*", default=(), metavar="COLUMN",
                        help="keep only these per-epoch metrics in epochs.csv.gz (e.g. "
                             "train_loss val_acc test_acc; default: all)")
    parser.add_argument("--epochs", nargs="*", default=(), metavar="FILE",
                        help="... their epochs.csv files, in the same order ...")
    parser.add_argument("--configs", nargs="*", default=(), metavar="FILE",
                        help="... their config.json files ...")
    parser.add_argument("--benchmarks", nargs="*", default=(), metavar="FILE",
                        help="... and their Snakemake benchmark.tsv files (optional)")


def run(args: argparse.Namespace) -> int:
    from analysis.collect import collect, find_jobs, jobs_from_lists
    from bench.errors import LossbenchError

    if (args.runs is None) == (args.summaries is None):
        raise LossbenchError("expected either --runs DIR or --summaries FILE ... (with "
                             "--epochs and --configs), not both or neither")
    if args.runs is not None:
        jobs = find_jobs(args.runs)
    else:
        jobs = jobs_from_lists(args.summaries, args.epochs, args.configs, args.benchmarks)
    out = Path(args.out)
    written = collect(jobs, out, args.protocol or out.resolve().name, args.epoch_metrics)
    timed = sum(j.benchmark is not None for j in jobs)
    print(f"collected {len(jobs)} jobs ({timed} with a benchmark file) into {out}: "
          f"{', '.join(written)}")
    return 0
