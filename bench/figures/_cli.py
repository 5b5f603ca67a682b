"""`lossbench figure NAME --out FILE.png`: a figure of bench.figures, as PNG and SVG beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Draw a figure computed from the implemented losses (e.g. 'gradients': Fig. 1 of the " \
       "mixing paper) as FILE.png and FILE.svg."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="figure name (gradients)")
    parser.add_argument("--out", required=True,
                        help="PNG path; the SVG is written beside it with the same stem")


def run(args: argparse.Namespace) -> int:
    from bench.errors import LossbenchError
    from bench.figures import make_figure
    from bench.io import save_figure_pair

    out = Path(args.out)
    if out.suffix != ".png":
        raise LossbenchError(f"--out: expected a .png path (the .svg goes beside it); got {out}")
    fig = make_figure(args.name)
    png, svg = save_figure_pair(fig, out, bbox_inches=None)
    print(f"wrote {png} and {svg}")
    return 0
