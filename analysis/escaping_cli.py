"""`lossbench escaping-verdict`: sign tests and the figure from `lossbench probe escaping` CSVs."""

from __future__ import annotations

import argparse

HELP = ("Escaping efficiency verdicts: fraction of datasets where EE(a) > EE(b) with a sign "
        "test, and the Tr(H Sigma) figure, from `lossbench probe escaping` tables.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in", dest="inputs", nargs="+", required=True,
                        help="escaping.csv files (one per dataset)")
    parser.add_argument("--claims", default="ce_el_0to05>ce,ce_el_0>ce,ce>el",
                        help="A>B items: EE(A) > EE(B) (default: the paper's two inequalities, "
                             "strategy 3 and F = 0)")
    parser.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analysis.escaping import (
        dataset_traces,
        parse_claims,
        read_probe_tables,
        sign_tests,
        trace_figure,
    )
    from bench.io import save_figure_pair, write_csv

    claims = parse_claims(args.claims)
    table = read_probe_tables(args.inputs)
    verdict = sign_tests(table, claims)
    out = Path(args.out)
    write_csv(out / "verdict.csv", verdict, float_format="%.6g")
    write_csv(out / "dataset_traces.csv", dataset_traces(table), float_format="%.6g")
    save_figure_pair(trace_figure(table), out / "traces.png")
    print(verdict[verdict["epoch"] == "all"].to_string(index=False))
    return 0
