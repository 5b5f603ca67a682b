"""Open-set noisy datasets: a share of one image set's training rows replaced by another's.

The GCE paper's Table 2 (Zhang & Sabuncu 2018, Sec. 4.2) follows Wang et al. 2018 ("Iterative
Learning with Open-set Noisy Labels", CVPR): 40 % of CIFAR-10's training images are replaced by
CIFAR-100 images, "A random CIFAR-10 label was assigned to these images". The construction here
is their code's (YisenWang/ONL, ``util.get_data``): distinct CIFAR-100 *training* images, chosen
at random, with class-balanced random CIFAR-10 labels (``open_set`` with ``keep_class_counts``:
the replaced rows are drawn per class and the outside images take their labels, so every class
keeps its size). Their code draws it once (``np.random.seed(0)``); so does this loader
(``open_seed=0``): the runs' seeds vary the initialisation and the batch order, not the data.

Only the published training rows are touched: the test rows are the main set's test set, byte
for byte, with its clean labels. The validation slice of a protocol is carved from the
(noisy) training rows, as the GCE paper's held-out 10 % (Sec. 4). ``meta["is_outlier"]`` marks
the replaced rows. Two sources: ``source`` (else the main set's env variable) and
``open_source`` (else the other set's, e.g. ``LOSSBENCH_CIFAR100``); the result is cached once
per (both sources, rate, seed) and memory-mapped.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import DatasetMissingError, LossbenchError


@dataclass(frozen=True)
class OpenSetSpec:
    main: str  # the dataset whose labels and test set are kept (cifar10)
    other: str  # where the replacing images come from (cifar100)
    rate: float = 0.4  # the GCE paper's eta (Table 2)


OPEN_SETS = {"cifar10_open_set": OpenSetSpec("cifar10", "cifar100")}


def _check_rate(name: str, rate: object) -> float:
    ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool) \
        and math.isfinite(float(rate)) and 0.0 <= float(rate) < 1.0
    if not ok:
        raise LossbenchError(f"dataset {name!r}: open_rate must be a float in [0, 1); got "
                             f"{rate!r}")
    return float(rate)


def _check_seed(name: str, seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise LossbenchError(f"dataset {name!r}: open_seed must be an integer >= 0; got "
                             f"{seed!r}")
    return int(seed)


def open_set(X_main: np.ndarray, y_main: np.ndarray, X_other: np.ndarray, rate: float,
             n_classes: int, seed: int, *, keep_class_counts: bool = False,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open-set noise (GCE paper Table 2, setup of Wang et al. 2018): images from another set.

    ``round(rate * n)`` training images, chosen at random, are replaced by as many distinct
    images of ``X_other`` (CIFAR-100 for CIFAR-10 in the paper), each given a uniformly random
    label of the main dataset's classes. Returns a new ``X`` (dtype of ``X_main``), the labels
    and an ``is_outlier`` mask; the inputs are not modified.

    ``keep_class_counts=True`` is Wang et al.'s own construction: ``round(rate * n_k)`` images
    of each class k are replaced and the outside images take the labels of the rows they
    replace, so every class keeps its size and the outside images' labels are random (with
    respect to their content) and class-balanced, as their code's ``np.repeat(range(10),
    2000)`` labels for 40 % of CIFAR-10 (YisenWang/ONL, ``util.get_data``).
    """
    labels = np.asarray(y_main)
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
            or n_classes < 2:
        raise LossbenchError(f"The 'n_classes' parameter must be an integer >= 2. Got "
                             f"{n_classes!r} instead.")
    if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)) \
            or (labels.size and (labels.min() < 0 or labels.max() >= n_classes)):
        raise LossbenchError(f"The 'y_main' parameter must be a 1-D array of labels in [0, "
                             f"{n_classes - 1}]. Got shape {labels.shape} of {labels.dtype}.")
    ok_rate = isinstance(rate, numbers.Real) and not isinstance(rate, bool) \
        and math.isfinite(float(rate)) and 0.0 <= float(rate) <= 1.0
    if not ok_rate:
        raise LossbenchError(f"The 'rate' parameter must be a float in [0, 1]. Got {rate!r} "
                             "instead.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise LossbenchError(f"The 'seed' parameter must be a non-negative integer. Got "
                             f"{seed!r} instead.")
    labels, rate, seed = labels.astype(np.int64), float(rate), int(seed)
    X_main, X_other = np.asarray(X_main), np.asarray(X_other)
    if X_main.shape[:1] != labels.shape:
        raise LossbenchError(f"The 'X_main' parameter must have one row per label "
                             f"({labels.size}). Got shape {X_main.shape} instead.")
    if X_other.shape[1:] != X_main.shape[1:]:
        raise LossbenchError(f"The 'X_other' parameter must have rows of shape "
                             f"{X_main.shape[1:]}. Got shape {X_other.shape} instead.")
    counts = np.bincount(labels, minlength=n_classes)
    n_out = int(np.round(rate * counts).astype(np.int64).sum()) if keep_class_counts \
        else int(round(rate * labels.size))
    if n_out > X_other.shape[0]:
        raise LossbenchError(f"The 'X_other' parameter has {X_other.shape[0]} rows; rate "
                             f"{rate:g} needs {n_out}.")
    rng = np.random.default_rng(seed)
    if keep_class_counts:
        where = np.concatenate([
            rng.choice(np.flatnonzero(labels == k), size=int(round(rate * counts[k])),
                       replace=False) for k in range(n_classes)]).astype(np.int64)
    else:
        where = rng.choice(labels.size, size=n_out, replace=False)
    source = rng.choice(X_other.shape[0], size=n_out, replace=False)
    X = X_main.copy()
    X[where] = X_other[source]
    y = labels.copy()
    if not keep_class_counts:
        y[where] = rng.integers(0, n_classes, size=n_out)
    is_outlier = np.zeros(labels.size, dtype=bool)
    is_outlier[where] = True
    return X, y, is_outlier


def build(name: str, main: Any, other: Any, rate: float, seed: int) -> tuple[dict, dict]:
    """Arrays and meta of the open-set dataset from the two loaded datasets."""
    from bench.data.arrays import published_split

    if tuple(main.input_shape) != tuple(other.input_shape):
        raise LossbenchError(f"dataset {name!r}: {main.name} images are {main.input_shape}, "
                             f"{other.name} images {other.input_shape}; they must match")
    train, test = published_split(main, "has no published test split")
    other_train, _ = published_split(other, "has no published test split")
    X_train, y_train, outlier = open_set(
        np.asarray(main.X[train]), np.asarray(main.y[train]), np.asarray(other.X[other_train]),
        rate, int(main.n_classes), seed, keep_class_counts=True)
    X = np.array(main.X)  # the test rows stay the main set's bytes
    y = np.array(main.y)
    X[train], y[train] = X_train, y_train
    is_outlier = np.zeros(y.size, dtype=bool)
    is_outlier[train] = outlier
    arrays = {"X": X, "y": y, "test_idx": np.asarray(test, dtype=np.int64),
              "is_outlier": is_outlier}
    meta = {"class_names": list(main.class_names), "open_set_source": other.name,
            "open_rate": rate, "open_seed": seed,
            "n_outliers": int(is_outlier.sum())}
    return arrays, meta


def load(name: str, parsed: Callable[[str, str], Any], sources: dict, source=None,
         open_source=None, open_rate: float | None = None,
         open_seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and meta of open-set dataset ``name`` (cached); ``parsed(dataset, source)`` loads
    a member set, ``sources`` maps a dataset name to its ``SourceSpec``."""
    from bench.data.images._cache import cached
    from bench.data.images._source import locate

    spec = OPEN_SETS[name]
    rate = _check_rate(name, spec.rate if open_rate is None else open_rate)
    seed = _check_seed(name, open_seed)
    main_src = locate(spec.main, sources[spec.main], source)
    try:
        other_src = locate(spec.other, sources[spec.other], open_source)
    except DatasetMissingError:
        raise DatasetMissingError(
            f"dataset {name!r} needs {spec.other} images too: set {sources[spec.other].env} "
            f"(expected {sources[spec.other].expected})") from None
    main, other = parsed(spec.main, main_src.shown), parsed(spec.other, other_src.shown)
    key = f"{main_src.key(_every_member)}|{other_src.key(_every_member)}|{rate!r}|{seed}"
    arrays, meta = cached(name, key, lambda: build(name, main, other, rate, seed))
    return arrays, {**meta, "source": main_src.shown, "open_source": other_src.shown}


def _every_member(member: str) -> bool:  # a source's content key over all its files
    return True
