"""A dataset from arrays: how images, text and a user's own data join the registry.

``ArrayDataset`` follows ``bench.data.Dataset``. Its splits come from two protocols that
apply to any family: ``official`` (the published train/test split, with a seeded, stratified
validation slice carved from train; ``official_val10``: the slice is 10 % of train, as the GCE
paper holds out, Zhang & Sabuncu 2018, Sec. 4) and ``random`` (a seeded, stratified
train/validation/test split for data without a published one).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.data._registry import Split, make_splits, register_protocol
from bench.errors import LossbenchError


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


@dataclass(eq=False)
class ArrayDataset:
    """``X [N, *input_shape]``, ``y [N]`` int64; ``test_idx`` marks a published test set.

    ``val_fraction`` is the share of the training part held out for validation (model
    selection); ``test_fraction`` the test share of ``random``. ``meta`` carries family
    extras (CIFAR-100's coarse labels, a class -> super-class map, ...).
    """

    name: str
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    n_classes: int
    family: str = "arrays"
    class_names: list[str] | None = None
    test_idx: np.ndarray | None = field(default=None, repr=False)
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.X.shape[0] != self.y.shape[0]:
            raise LossbenchError(f"dataset {self.name!r}: X has {self.X.shape[0]} rows, y has "
                                 f"{self.y.shape[0]}")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= self.n_classes):
            raise LossbenchError(f"dataset {self.name!r}: labels must be in [0, "
                                 f"{self.n_classes - 1}]; got {self.y.min()}..{self.y.max()}")
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise LossbenchError(f"dataset {self.name!r}: {len(self.class_names)} class names "
                                 f"for {self.n_classes} classes")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.X.shape[1:])

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def splits(self, protocol: str) -> list[Split]:
        return make_splits(self, protocol)


def stratified_holdout(idx: np.ndarray, y: np.ndarray, fraction: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (kept, held out) with ``fraction`` held out, stratified when every
    class has >= 2 rows (scikit-learn), plain otherwise; both parts sorted and non-empty."""
    from sklearn.model_selection import train_test_split

    n_out = min(max(1, int(round(fraction * idx.size))), idx.size - 1)
    counts = np.bincount(y[idx])
    counts = counts[counts > 0]
    stratify = y[idx] if counts.min() >= 2 and counts.size <= min(n_out, idx.size - n_out) \
        else None
    keep, out = train_test_split(idx, test_size=n_out, random_state=seed % 2**32,
                                 stratify=stratify)
    return np.sort(keep), np.sort(out)


def published_split(ds, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays of a dataset's published test set (``test_idx``);
    ``missing`` ends the one-line error when it has none."""
    test = getattr(ds, "test_idx", None)
    if test is None:
        raise LossbenchError(f"dataset {ds.name!r} {missing}")
    test = np.sort(np.asarray(test, dtype=np.int64))
    return np.setdiff1d(np.arange(len(ds.y)), test), test


def _official(ds: ArrayDataset, fraction: float, protocol: str) -> list[Split]:
    train, test = published_split(ds, "has no published test split; use protocol 'random'")
    fit, val = stratified_holdout(train, ds.y, fraction, _seed(ds.name, protocol))
    return [(fit, val, test)]


@register_protocol("official")
def official(ds: ArrayDataset) -> list[Split]:
    """The published test set; validation carved from the published train set (seeded)."""
    return _official(ds, ds.val_fraction, "official")


@register_protocol("official_val10")
def official_val10(ds: ArrayDataset) -> list[Split]:
    """The published test set; 10 % of the published train set held out for validation (the
    GCE paper, Sec. 4: "10% of the training data was retained for validation"; under label
    noise the slice is noisy too, test labels stay clean)."""
    return _official(ds, 0.1, "official_val10")


@register_protocol("random")
def random_split(ds: ArrayDataset) -> list[Split]:
    """Seeded stratified split: ``test_fraction`` test, then ``val_fraction`` of the rest."""
    idx = np.arange(len(ds.y))
    rest, test = stratified_holdout(idx, ds.y, getattr(ds, "test_fraction", 0.2),
                                    _seed(ds.name, "random", "test"))
    fit, val = stratified_holdout(rest, ds.y, getattr(ds, "val_fraction", 0.2),
                                  _seed(ds.name, "random", "val"))
    return [(fit, val, test)]


__all__ = ["ArrayDataset", "make_splits", "official", "official_val10", "published_split",
           "random_split", "stratified_holdout"]
