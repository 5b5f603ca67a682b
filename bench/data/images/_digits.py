"""Small digit images that ship (scikit-learn) or come with UCI-121, for CPU-sized studies.

``digits``: scikit-learn's ``load_digits`` (the 1,797 optdigits test images, 8x8 counts 0..16).
``semeion_img``: UCI ``semeion`` (1,593 16x16 binary scans, Buscema 1998); the collection
z-scored each of the 256 pixels, so a pixel is "on" where it exceeds its column's midpoint.
``optical_img``: UCI ``optical`` (optdigits: 3,823 train + 1,797 test, 8x8 counts 0..16). The
collection z-scored each file separately (its two files give each column two sets of levels)
and dropped the pixels constant over both files, 0 and 39 (found by matching the test file
to ``load_digits`` column by column); the counts come back as the integer levels with the
smallest spacing (``_counts``) and the two dropped pixels as 0, their only value in optdigits.
"""

from __future__ import annotations

import numpy as np

from bench.data import _sources
from bench.errors import LossbenchError

DIGIT_NAMES = [str(d) for d in range(10)]
OPTICAL_DROPPED = (0, 39)  # optdigits pixels the UCI-121 collection removed (constant 0)


def to_uint8(counts: np.ndarray, top: int) -> np.ndarray:
    """Counts 0..top -> uint8 0..255, rounded (digits: 16 -> 255)."""
    return np.round(counts.astype(np.float64) * 255.0 / top).astype(np.uint8)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return to_uint8(bunch.images, 16)[:, None], bunch.target.astype(np.int64)


def _uci(name: str, source) -> tuple[object, str]:
    from bench.data.uci import load

    origin = _sources.choose(source, _sources.DATA_ENV, _sources.DEFAULT_DATA_URL)
    return load(name, source), origin


def semeion_arrays(source=None) -> tuple[np.ndarray, np.ndarray]:
    """X [1593, 1, 16, 16] uint8 (0 or 255), row-major as the UCI file (see grid.py)."""
    ds, origin = _uci("semeion", source)
    Z = np.asarray(ds.X, dtype=np.float64)
    if Z.shape[1] != 256:
        raise LossbenchError(f"UCI dataset 'semeion' from {origin}: {Z.shape[1]} features; "
                             "expected 256 (16x16 pixels)")
    lo, hi = Z.min(0), Z.max(0)
    for j in range(256):
        levels = np.unique(Z[:, j]).size
        if levels > 2:
            raise LossbenchError(f"UCI dataset 'semeion' from {origin}: feature f{j + 1} has "
                                 f"{levels} values; expected 2 (binary pixels)")
    midpoint = (lo + hi) / 2
    on = np.greater(Z, midpoint)  # a constant column stays off
    return (on.astype(np.uint8) * 255).reshape(-1, 1, 16, 16), np.asarray(ds.y, dtype=np.int64)


def _counts(Z: np.ndarray, where: str, top: int = 16, tol: float = 2e-3) -> np.ndarray:
    """Integer levels 0..top of z-scored count columns.

    z-scoring keeps the levels' spacing up to one scale per column, so the counts are the
    smallest integer scale that puts every distinct value on an integer (the background 0 is
    the minimum). Checked exactly on optdigits' test file against scikit-learn's copy.
    """
    out = np.zeros(Z.shape, dtype=np.int64)
    for j in range(Z.shape[1]):
        values = np.unique(Z[:, j])
        if values.size == 1:
            continue  # constant within this file: background
        rel = (values - values[0]) / (values[-1] - values[0])
        for span in range(1, top + 1):
            if np.all(np.abs(rel * span - np.round(rel * span)) < tol):
                break
        else:
            raise LossbenchError(f"{where}: feature f{j + 1} does not hold integer counts "
                                 f"0..{top} ({values.size} distinct values)")
        out[:, j] = np.round((Z[:, j] - values[0]) / (values[-1] - values[0]) * span)
    return out


def optical_arrays(source=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X [5620, 1, 8, 8] uint8, y, and the test rows (the optdigits test file, fich2)."""
    ds, origin = _uci("optical", source)
    Z = np.asarray(ds.X, dtype=np.float64)
    if Z.shape[1] != 64 - len(OPTICAL_DROPPED):
        raise LossbenchError(f"UCI dataset 'optical' from {origin}: {Z.shape[1]} features; "
                             f"expected {64 - len(OPTICAL_DROPPED)} (8x8 less pixels 0 and 39)")
    n_train = sum(int(np.asarray(a).size) for a in ds.conxuntos)  # conxuntos split fich1
    counts = np.zeros((Z.shape[0], 64), dtype=np.int64)
    kept = [j for j in range(64) if j not in OPTICAL_DROPPED]
    for part, rows in (("optical_train_R.dat", slice(0, n_train)),
                       ("optical_test_R.dat", slice(n_train, None))):
        counts[rows, kept] = _counts(Z[rows], f"UCI dataset 'optical' from {origin}: {part}")
    test_idx = np.arange(n_train, Z.shape[0], dtype=np.int64)
    return to_uint8(counts, 16).reshape(-1, 1, 8, 8), np.asarray(ds.y, dtype=np.int64), test_idx
