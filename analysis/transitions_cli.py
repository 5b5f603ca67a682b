"""`lossbench transitions`: collect forward's T-hat estimates and score them (see
analysis.transitions).

Light at import time (argparse only); pandas loads inside `run`.
"""

from __future__ import annotations

import argparse

HELP = ("Collect the jobs' transitions.csv (forward's T-hat beside the true T) into "
        "transitions.csv.gz and summarise the estimation error per architecture and noise "
        "level in transition_error.csv.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("transitions", nargs="+", metavar="FILE",
                        help="the train jobs' transitions.csv files")
    parser.add_argument("--out-dir", required=True,
                        help="folder for transitions.csv.gz and transition_error.csv (created)")


def run(args: argparse.Namespace) -> int:
    from analysis.transitions import write_transitions

    written = write_transitions(args.transitions, args.out_dir)
    print(f"collected {len(args.transitions)} transitions.csv into {args.out_dir}: "
          f"{', '.join(written)}")
    return 0
