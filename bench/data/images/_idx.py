"""MNIST and Fashion-MNIST from the IDX files (LeCun et al.; Xiao et al. 2017).

An IDX file is a big-endian header (magic 2051 = uint8 images with count, rows, cols;
2049 = uint8 labels with count) followed by the bytes, row-major; shipped gzipped. Rows are
the 60,000 training images, then the 10,000 test images (``test_idx``).
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from bench.data.images._source import ImageSource
from bench.errors import LossbenchError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FILES = tuple(f"{stem}.gz" for pair in PARTS.values() for stem in pair)


def _stem(member: str) -> str:
    base = member.rsplit("/", 1)[-1]
    return base[:-3] if base.endswith(".gz") else base


def wanted(member: str) -> bool:
    return _stem(member) in {s for pair in PARTS.values() for s in pair}


def _read_idx(src: ImageSource, member: str, raw: bytes, magic: int) -> np.ndarray:
    """The payload of one IDX file as uint8 ``[count, *dims]``, header checked."""
    if member.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise src.fail(member, f"truncated or corrupted gzip ({exc})") from None
    n_dims = 3 if magic == IMAGES_MAGIC else 1
    header = 4 * (1 + n_dims)
    if len(raw) < header:
        raise src.fail(member, f"{len(raw)} bytes; shorter than the {header}-byte IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise src.fail(member, f"IDX magic number {found}; expected {magic}")
    dims = [int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in range(1, 1 + n_dims)]
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise src.fail(member, f"{len(raw) - header} data bytes; the header "
                               f"{'x'.join(map(str, dims))} says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def parse(src: ImageSource, n_classes: int = 10) -> tuple[dict[str, np.ndarray], dict]:
    """X [70000, 1, 28, 28] uint8 (train then test), y int64, test_idx."""
    found: dict[str, tuple[str, bytes]] = {}
    for member, raw in src.members(wanted):
        stem = _stem(member)
        if stem in found:
            raise src.fail(member, f"second copy of {stem} (first: {found[stem][0]})")
        found[stem] = (member, raw)
    missing = [s for pair in PARTS.values() for s in pair if s not in found]
    if missing:
        raise LossbenchError(f"{src.shown}: no {missing[0]}.gz (missing: {', '.join(missing)})")
    images, labels = [], []
    for image_stem, label_stem in PARTS.values():
        X = _read_idx(src, *found[image_stem], IMAGES_MAGIC)
        y = _read_idx(src, *found[label_stem], LABELS_MAGIC)
        if X.shape[0] != y.shape[0]:
            raise src.fail(found[label_stem][0], f"{y.shape[0]} labels for {X.shape[0]} images "
                                                 f"in {found[image_stem][0]}")
        if y.size and y.max() >= n_classes:
            raise src.fail(found[label_stem][0], f"label {int(y.max())} out of range "
                                                 f"0..{n_classes - 1}")
        if images and X.shape[1:] != images[0].shape[2:]:
            raise src.fail(found[image_stem][0], f"images are {X.shape[1]}x{X.shape[2]}; the "
                                                 f"training images are {images[0].shape[2]}x"
                                                 f"{images[0].shape[3]}")
        images.append(X[:, None])
        labels.append(y.astype(np.int64))
    y = np.concatenate(labels)
    n_test = labels[1].size
    return {"X": np.concatenate(images), "y": y,
            "test_idx": np.arange(y.size - n_test, y.size, dtype=np.int64)}, {}
