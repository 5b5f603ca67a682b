"""`lossbench datasets`: which datasets the configured source holds, and are they valid."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

HELP = "List the UCI-121 datasets with their shape and status (ok | missing | invalid: reason)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=None,
                        help="URL, .tar.gz or folder of the collection "
                             "(default: $LOSSBENCH_UCI121, then the authors' URL)")
    parser.add_argument("--splits-source", default=None,
                        help="URL, .tar.gz or folder of the Klambauer split files; when given (or "
                             "$LOSSBENCH_UCI121_SPLITS is set) they are validated too")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def format_rows(rows: list[dict], fmt: str) -> str:
    from bench.data.uci._status import COLUMNS

    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    cells = [[("" if r[c] is None else str(r[c])) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """0 when every present dataset is valid (missing ones are listed on stderr).

    Exit 2, as for any bad input, when a dataset is invalid (the table is printed first, its
    status column says why) or when the source holds none of the datasets: an empty or wrong
    folder is not success.
    """
    from bench.data import dataset_status
    from bench.errors import LossbenchError
    from bench.warn import one_line_warnings

    with one_line_warnings("lossbench datasets"):
        rows = dataset_status(args.source, args.splits_source)
    missing = [r["name"] for r in rows if r["status"] == "missing"]
    invalid = [r["name"] for r in rows if r["status"].startswith("invalid")]
    if len(missing) == len(rows):
        raise LossbenchError(
            f"no dataset found in source {_origin(args.source)}: expected one folder per "
            "dataset, each holding <name>.txt and its data files (e.g. iris/iris.txt), "
            "or a .tar.gz of such folders"
        )
    sys.stdout.write(format_rows(rows, args.format))
    if missing:
        print(f"warning: {len(missing)} dataset(s) missing from the source: {', '.join(missing)}",
              file=sys.stderr)
    if invalid:
        raise LossbenchError(
            f"{len(invalid)} dataset(s) invalid: {', '.join(invalid)} (the status column says "
            "why)"
        )
    return 0


def _origin(source: str | None) -> str:
    from bench.data import _sources

    return repr(_sources.choose(source, _sources.DATA_ENV, _sources.DEFAULT_DATA_URL))
