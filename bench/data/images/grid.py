"""Draw a grid of images per class, to see that a set's pixels are read in the right order.

``python -m bench.data.images.grid --out results/images/digit_grids`` writes one PNG per
dataset (default: the three digit sets): row c holds the first ``--per-class`` images of class
c in dataset order, each upscaled with nearest-neighbour pixels and framed in grey. A wrong
reading (transposed, mirrored, wrong width) shows at a glance as sideways or scrambled digits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.io import atomic_write

DIGIT_SETS = ("digits", "semeion_img", "optical_img")


def grid(X: np.ndarray, y: np.ndarray, n_classes: int, per_class: int = 10,
         scale: int = 4) -> np.ndarray:
    """uint8 ``[H, W, C]`` mosaic of ``X [N, C, h, w]``: one row per class, grey frames."""
    channels, h, w = X.shape[1:]
    cell = np.full((n_classes, per_class, h + 2, w + 2, channels), 128, dtype=np.uint8)
    for c in range(n_classes):
        for k, i in enumerate(np.flatnonzero(y == c)[:per_class]):
            cell[c, k, 1:-1, 1:-1] = np.asarray(X[i]).transpose(1, 2, 0)
    mosaic = cell.transpose(0, 2, 1, 3, 4).reshape(n_classes * (h + 2), per_class * (w + 2),
                                                   channels)
    return mosaic.repeat(scale, 0).repeat(scale, 1)


def save_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def main(argv: list[str] | None = None) -> int:
    from bench.data import get_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/images/digit_grids"))
    parser.add_argument("--datasets", nargs="+", default=list(DIGIT_SETS))
    parser.add_argument("--source", default=None,
                        help="source of every dataset named (the UCI-121 source for the "
                             "UCI digit sets; default: each dataset's env variable)")
    parser.add_argument("--per-class", type=int, default=10)
    args = parser.parse_args(argv)
    for name in args.datasets:
        ds = get_dataset(name, args.source) if name != "digits" else get_dataset(name)
        scale = max(1, 64 // ds.X.shape[-1])  # 8x8 digits drawn 8x, 32x32 images 2x
        path = save_png(args.out / f"{name}.png",
                        grid(ds.X, ds.y, ds.n_classes, args.per_class, scale))
        print(f"{name}: {ds.X.shape[0]} images {'x'.join(map(str, ds.X.shape[1:]))} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
