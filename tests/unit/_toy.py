"""A tiny three-class dataset for the stacked-engine vs torch-trainer equivalence tests."""

from __future__ import annotations

import numpy as np

from bench.data import ArrayDataset


def toy_dataset(n: int = 60, d: int = 5, c: int = 3, seed: int = 0) -> ArrayDataset:
    """``n`` Gaussian samples; the class is a step function of the first two features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)).astype(np.int64)
    return ArrayDataset("toy", X, y, c)
