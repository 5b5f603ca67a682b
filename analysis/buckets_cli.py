"""`lossbench buckets`: the motivating example's table from two prediction files."""

from __future__ import annotations

import argparse

HELP = ("Split the test set by correctness and p_y at an early epoch; count how many of each "
        "part are correct at a late epoch (the mixing paper's motivating example).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--early", required=True,
                        help="predictions file of the early epoch, or its epoch number with "
                             "--predictions-dir")
    parser.add_argument("--late", required=True, help="the same for the late epoch")
    parser.add_argument("--predictions-dir", default=None,
                        help="a run's predictions folder: --early/--late are epochs and the "
                             "files are <run_id>-epoch<E>.csv.gz (one run)")
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--out", required=True, help="CSV to write")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.buckets import bucket_table
    from bench.errors import LossbenchError
    from bench.io import write_csv

    paths = [args.early, args.late]
    if args.predictions_dir is not None:
        from pathlib import Path

        folder = Path(args.predictions_dir)
        paths = []
        for epoch in (args.early, args.late):
            found = sorted(folder.glob(f"*-epoch{epoch}.csv.gz"))
            if len(found) != 1:
                raise LossbenchError(f"{folder}: expected one *-epoch{epoch}.csv.gz (one run's "
                                     f"predictions); found {len(found)}")
            paths.append(str(found[0]))
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_csv(path))
        except (OSError, pd.errors.ParserError) as err:
            raise LossbenchError(f"{path}: cannot read predictions ({err})") from None
    table = bucket_table(*frames, threshold=args.threshold)
    write_csv(args.out, table)
    print(table.to_string(index=False))
    return 0
