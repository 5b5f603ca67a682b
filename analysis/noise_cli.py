"""`lossbench noise-curves`: mean test accuracy and mean rank versus noise rate, per loss.

Light at import time (argparse only); pandas, scipy and matplotlib load inside `run`.
"""

from __future__ import annotations

import argparse

HELP = ("Per loss, mean test accuracy and mean rank over datasets versus label-noise rate "
        "(bootstrap 95 % CIs), one figure per architecture, from a noise study's scores.csv.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scores", help="scores.csv of a noise study (`lossbench collect`)")
    parser.add_argument("--out-dir", required=True,
                        help="folder for noise_curves.csv and noise_curves_<arch>.png/.svg")
    parser.add_argument("--archs", default=None,
                        help="comma-separated architectures (default: every one in scores)")
    parser.add_argument("--labels", default=None,
                        help="CSV method,label: display labels, in the order to show methods")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from analysis._input import read_labels
    from analysis.noise import draw_curves, noise_curves
    from bench.errors import LossbenchError
    from bench.io import save_figure_pair, write_csv

    try:
        scores = pd.read_csv(args.scores)
    except FileNotFoundError:
        raise LossbenchError(f"{args.scores}: no such file; expected the scores.csv of "
                             "`lossbench collect`") from None
    labels = read_labels(args.labels) if args.labels else None
    archs = [a.strip() for a in args.archs.split(",") if a.strip()] if args.archs else None
    curves = noise_curves(scores, archs, seed=args.seed, source=args.scores)
    out = Path(args.out_dir)
    write_csv(out / "noise_curves.csv", curves, float_format="%.6g")
    for arch in dict.fromkeys(curves["arch"]):
        save_figure_pair(draw_curves(curves, arch, labels), out / f"noise_curves_{arch}.png")
        part = curves[curves["arch"] == arch]
        levels = len(part.groupby(["noise_kind", "noise_rate"]))
        print(f"{out}/noise_curves_{arch}.png: {part['loss'].nunique()} losses, {levels} noise "
              "levels")
    return 0
