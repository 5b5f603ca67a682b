"""`lossbench q-sweep`: test accuracy per epoch of Lq for several q (the GCE paper's Fig. 2).

Light at import time (argparse only); pandas and matplotlib load inside `run`.
"""

from __future__ import annotations

import argparse

HELP = ("Test accuracy per epoch at the selected lr for CE and Lq with several q, per dataset "
        "and noise level, one figure per architecture (the GCE paper's Fig. 2).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", required=True,
                        help="epochs.csv.gz of a noise study (`lossbench collect`)")
    parser.add_argument("--summary", required=True,
                        help="summary.csv of the same study (the selected lr of each run)")
    parser.add_argument("--arch", required=True, help="architecture to draw")
    parser.add_argument("--out-dir", required=True,
                        help="folder for q_sweep.csv and q_sweep_<arch>.png/.svg")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from analysis.qsweep import draw_q_curves, q_curves
    from bench.errors import LossbenchError
    from bench.io import save_figure_pair, write_csv

    tables = {}
    for name in ("epochs", "summary"):
        path = getattr(args, name)
        try:
            tables[name] = pd.read_csv(path)
        except FileNotFoundError:
            raise LossbenchError(f"--{name} {path}: no such file; expected the collected "
                                 "tables of `lossbench collect`") from None
    curves = q_curves(tables["epochs"], tables["summary"], args.arch, source=args.epochs)
    out = Path(args.out_dir)
    write_csv(out / "q_sweep.csv", curves, float_format="%.6g")
    save_figure_pair(draw_q_curves(curves, args.arch), out / f"q_sweep_{args.arch}.png")
    print(f"{out}/q_sweep_{args.arch}.png: {curves['dataset'].nunique()} datasets, "
          f"{curves['loss'].nunique()} methods")
    return 0
