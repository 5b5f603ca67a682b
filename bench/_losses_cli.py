"""`lossbench losses`: the registered losses with their display labels (or a selection of them).

The pipeline writes the configured losses' labels with it (`--select ... --out losses.csv`);
it is also the first place an unknown loss id of a config is reported (the registry's error
lists the known ids). Lives outside bench/losses/ only to keep that package's files to losses.
"""

from __future__ import annotations

import argparse
import sys

HELP = "List the registered losses (id, display label); --select checks and labels a config's."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", nargs="+", default=None, metavar="ID",
                        help="only these ids (or methods ID(NAME=VALUE, ...)), in this order; "
                             "each is built, so an unknown or unbuildable one stops here")
    parser.add_argument("--format", choices=("table", "csv"), default="table",
                        help="stdout format (default: table)")
    parser.add_argument("--out", default=None,
                        help="write the CSV (method,label) atomically to this file instead")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench.io import write_csv
    from bench.losses import list_losses, loss_label
    from bench.spec import RunSpec, parse_method
    from bench.train._labels import build_loss

    if args.select is not None:
        ids = list(args.select)
        labels = []
        for method in ids:  # a method may carry parameters: gce(q=0.7), forward(T=True)
            loss_id, params = parse_method(method)
            # built as a run builds it: T: true (the run's true matrix) is only known then
            spec = RunSpec(dataset="-", model="-", loss=loss_id, loss_params=params)
            label = build_loss(spec).label
            labels.append(label + method[len(loss_id):].replace("(", " (", 1))
    else:
        ids = list_losses()
        labels = [loss_label(loss_id) for loss_id in ids]
    table = pd.DataFrame({"method": ids, "label": labels})
    if args.out:
        write_csv(args.out, table)
        print(f"wrote {args.out}: {len(table)} losses")
    elif args.format == "csv":
        sys.stdout.write(table.to_csv(index=False))
    else:
        width = max(len("method"), *(len(i) for i in ids))
        sys.stdout.write("\n".join(f"{m.ljust(width)}  {lab}" for m, lab in
                                   [("method", "label"), *zip(ids, labels, strict=True)]) + "\n")
    return 0
