"""`lossbench two-scale-curves`: the two-scale study's Fig. 9 and Figs. 4-6 from its jobs' side
files (see analysis.two_scale).

Light at import time (argparse only); pandas and matplotlib load inside `run`.
"""

from __future__ import annotations

import argparse

HELP = ("Accuracy per iteration (training batch and test, mean over seeds with bootstrap 95 % "
        "CIs) and the test-set max p / p_y / delta p histograms summed over seeds, from the "
        "jobs' iterations.csv and predictions/*-hist.csv (the two-scale paper's Figs. 9, 4-6).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="PATH",
                        help="train job folders (or their iterations.csv), or a runs folder "
                             "holding them")
    parser.add_argument("--arch", required=True, help="architecture to draw")
    parser.add_argument("--out-dir", required=True,
                        help="folder for two_scale_curves.csv, two_scale_hist.csv and "
                             "two_scale_{curves,hist}_<arch>.png/.svg (created)")
    parser.add_argument("--labels", default=None,
                        help="CSV method,label: display labels, in the order to show methods")
    parser.add_argument("--hist-methods", nargs="+", default=None, metavar="METHOD",
                        help="methods of the histogram figure (default: one_scale "
                             "two_scale(eta=0.01), the paper's pair)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analysis import two_scale as ts
    from analysis._input import read_labels
    from bench.io import save_figure_pair, write_csv

    labels = read_labels(args.labels) if args.labels else None
    frames, hists = ts.for_arch(*ts.read_jobs(args.runs), args.arch)
    curves = ts.iteration_curves(frames, seed=args.seed)
    hist = ts.histogram_table(hists)
    methods = tuple(args.hist_methods or ts.HIST_METHODS)
    figures = {f"two_scale_curves_{args.arch}.png":
               ts.draw_iteration_curves(curves, args.arch, labels),
               f"two_scale_hist_{args.arch}.png":
               ts.draw_histograms(hist, args.arch, methods, labels)}
    out = Path(args.out_dir)  # every table and figure is made before the first file is written
    write_csv(out / "two_scale_curves.csv", curves, float_format="%.6g")
    write_csv(out / "two_scale_hist.csv", hist, float_format="%.6g")
    for name, fig in figures.items():
        save_figure_pair(fig, out / name)
    print(f"{out}: two_scale_curves.csv ({len(curves)} rows: {curves['dataset'].nunique()} "
          f"datasets, {curves['loss'].nunique()} methods), two_scale_hist.csv "
          f"({len(hist)} rows), {', '.join(figures)} (+ .svg)")
    return 0
