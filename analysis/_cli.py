"""`lossbench analyze`: a long results CSV in, every table and figure of the comparison out.

Light at import time (argparse only); pandas, scipy and matplotlib load inside `run`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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
                             "OUT/<col>=<value>/, indexed in OUT/groups.csv")
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


def check_out_dir(out: Path) -> None:
    """Fail before the analysis, not after it, when ``--out`` cannot be a writable folder."""
    from bench.errors import LossbenchError

    if out.exists() and not out.is_dir():
        raise LossbenchError(f"--out '{out}' is an existing file; give a folder path (created)")
    probe = out
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise LossbenchError(f"--out '{out}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LossbenchError(f"--out '{out}': folder '{probe}' is not writable")


def write_all(results: dict, out: Path) -> list[tuple[Path, object]]:
    """Write every group into a staging folder inside ``out``, then move the files into place.

    A failed write (disk full, read-only) leaves ``out`` as it was: no partial file, no new
    file, no staging folder; a folder created for this run is removed again. A staging folder
    of a killed run is removed by the next run (`bench.tempdirs`).
    """
    from analysis.tables import groups_index, write_csv, write_outputs
    from bench import tempdirs
    from bench.errors import LossbenchError

    created = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    staging, done, ok = None, [], False
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempdirs.clean_stale(out)
        staging = tempdirs.make_dir(out, "analyze")
        for key, comparison in results.items():
            folder = _folder_name(comparison.group) if key else Path()
            write_outputs(comparison, staging / folder)
            done.append((out / folder, comparison))
        if any(results):  # grouped: an index of the group folders
            write_csv(staging / "groups.csv", groups_index(done, out))
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            dest = out / path.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        ok = True
    except OSError as exc:
        where = str(exc.filename or out)
        if staging is not None:
            where = where.replace(str(staging), str(out))
        raise LossbenchError(
            f"cannot write the analysis into '{out}': {exc.strerror or exc} ({where}); "
            "nothing was written"
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not ok:
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:
                    break
    return done


def run(args: argparse.Namespace) -> int:
    from bench.warn import one_line_warnings

    with one_line_warnings("lossbench analyze"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from analysis._compare import compare
    from analysis._input import read_labels, read_results

    out = Path(args.out)
    check_out_dir(out)
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
    results = {(): result} if not group_by else result
    for folder, comparison in write_all(results, out):
        print(f"{folder}{_where(comparison)}: {_summary_line(comparison)}")
    return 0


def _where(comparison) -> str:
    group = comparison.group
    return f" [{', '.join(f'{k}={v}' for k, v in group.items())}]" if group else ""


def _summary_line(comparison) -> str:
    f = comparison.friedman
    dropped = f", dropped {len(comparison.dropped)}" if comparison.dropped else ""
    head = f"{f['n_methods']} methods x {f['n_datasets']} datasets{dropped}"
    if f.get("applicable", True):
        return f"{head}; Friedman p = {f['p_value']:.3g}"
    w = comparison.wilcoxon_holm.iloc[0]
    return (f"{head}; Friedman needs >= 3 methods: Wilcoxon signed-rank p = {w['p_value']:.3g}, "
            f"sign test p = {w['sign_p']:.3g}")
