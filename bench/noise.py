"""Synthetic label noise of the GCE paper (Zhang & Sabuncu, NeurIPS 2018, Sections 3.1 and 4).

Closed-set noise draws each noisy label from a row of a transition matrix T (rows = true
class, columns = noisy class, rows sum to 1), independently of the input (Sec. 3.1). Every kind
below only builds T; one sampler draws the labels, so the T a caller gets back (for forward
correction with the true matrix, "Forward T" in Table 1) is the one the labels came from.

Kinds (``NOISE_KINDS``; ``uniform`` is what "uniform noise" means in this suite):

- ``none`` (alias ``clean``): rate 0, T = I.
- ``uniform``: the paper's definition (Sec. 3.1): q_jj = 1 - eta, q_jk = eta / (c - 1) for
  k != j. A label changes with probability eta exactly and never "flips" onto itself.
- ``uniform_any``: the paper's generation sentence (Sec. 4.2): "mapping a true label to a random
  label through uniform sampling" over all c classes, itself included, for a share eta of the
  labels: T = (1 - eta) I + eta / c. The realised flip rate is eta (c - 1) / c (0.72 for
  eta = 0.8, c = 10); which of the two the published runs used is not said.
- ``pair``: class-dependent noise (Sec. 4.2, after Patrini et al. 2017): class i moves to
  ``target[i]`` with probability eta; classes with no target keep their label. ``mapping`` names
  the target table (``NOISE_MAPPINGS``): ``cifar10``, ``fashion_mnist`` (by class names),
  ``cifar100`` (i -> i + 1 mod 100), ``cifar100_superclass`` (next class in its super-class) and
  ``next`` (i -> i + 1 mod c, the default, for UCI data).

Open-set noise (Table 2, after Wang et al. 2018) replaces images instead of labels, so it is a
dataset, not a kind here: ``cifar10_open_set`` (``bench.data.images.open_set`` builds it).
"""

from __future__ import annotations

import math
import numbers
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import LossbenchError
from bench.registry import Registry

Split = tuple[np.ndarray, np.ndarray, np.ndarray]

# Official class orders (the datasets' batches.meta / the Fashion-MNIST README).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

# Sec. 4.2: CIFAR-10 as Patrini et al.; Fashion-MNIST pairs chosen from a t-SNE plot.
NAMED_FLIPS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "cifar10": (CIFAR10_CLASSES, (("truck", "automobile"), ("bird", "airplane"),
                                  ("deer", "horse"), ("cat", "dog"), ("dog", "cat"))),
    "fashion_mnist": (FASHION_MNIST_CLASSES, (("Ankle boot", "Sneaker"), ("Sneaker", "Sandal"),
                                              ("Pullover", "Shirt"), ("Coat", "Dress"),
                                              ("Dress", "Coat"))),
}

NOISE_KINDS = Registry("noise kind")
NOISE_MAPPINGS = Registry("noise mapping")


# -- validation -----------------------------------------------------------------------------------

def _check_n_classes(n_classes: object) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
            or n_classes < 2:
        raise LossbenchError(f"The 'n_classes' parameter must be an integer >= 2. Got "
                             f"{n_classes!r} instead.")
    return int(n_classes)


def _check_labels(y: object, n_classes: int, name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise LossbenchError(f"The {name!r} parameter must be a 1-D integer array. Got dtype "
                             f"{arr.dtype} and shape {arr.shape} instead.")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise LossbenchError(f"The {name!r} parameter must hold labels in [0, {n_classes - 1}]."
                             f" Got values {arr.min()}..{arr.max()} instead.")
    return arr.astype(np.int64, copy=False)


def _check_rate(rate: object, low: float, high: float, why: str = "") -> float:
    ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool) \
        and math.isfinite(float(rate)) and low <= float(rate) <= high
    if not ok:
        raise LossbenchError(f"The 'rate' parameter must be a float in [{low:g}, {high:g}]"
                             f"{why}. Got {rate!r} instead.")
    return float(rate)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise LossbenchError(f"The 'seed' parameter must be a non-negative integer. Got "
                             f"{seed!r} instead.")
    return int(seed)


# -- transition matrices --------------------------------------------------------------------------

def register_kind(name: str, *, family: str = "closed_set", max_rate: float = 1.0,
                  why: str = "", uses_mapping: bool = False) -> Callable:
    """Register ``builder(n_classes, rate, target) -> T`` as a noise kind.

    ``max_rate`` and ``why`` word the rate check; ``uses_mapping`` says whether the kind takes a
    target table (``target`` is None for the others).
    """
    return NOISE_KINDS.register(name, family=family, max_rate=max_rate, why=why,
                                uses_mapping=uses_mapping)


def _identity(n_classes: int, rate: float, target: np.ndarray | None) -> np.ndarray:
    return np.eye(n_classes)


register_kind("none", max_rate=0.0, why=" (clean labels)")(_identity)
register_kind("clean", max_rate=0.0, why=" (clean labels)")(_identity)


@register_kind("uniform")
def uniform_transition(n_classes: int, rate: float, target: np.ndarray | None) -> np.ndarray:
    """Sec. 3.1: keep with 1 - eta, move to each other class with eta / (c - 1)."""
    T = np.full((n_classes, n_classes), rate / (n_classes - 1))
    np.fill_diagonal(T, 1.0 - rate)
    return T


@register_kind("uniform_any")
def uniform_any_transition(n_classes: int, rate: float, target: np.ndarray | None) -> np.ndarray:
    """Sec. 4.2's sentence: a share eta is resampled over all c classes (itself included)."""
    return (1.0 - rate) * np.eye(n_classes) + rate / n_classes


@register_kind("pair", max_rate=0.5, uses_mapping=True,
               why=" for kind 'pair' (above 0.5 the flipped-to class becomes the majority "
                   "label of its source class)")
def pair_transition(n_classes: int, rate: float, target: np.ndarray | None) -> np.ndarray:
    """Sec. 4.2: class i -> target[i] with probability eta; target[i] == i keeps class i."""
    assert target is not None and target.shape == (n_classes,), "pair needs a target table"
    T = np.eye(n_classes)
    moved = np.flatnonzero(target != np.arange(n_classes))
    T[moved, moved] = 1.0 - rate
    T[moved, target[moved]] += rate
    return T


# -- mapping tables (class -> class it is flipped to) ---------------------------------------------

def _normalise(name: str) -> str:
    return " ".join(str(name).replace("_", " ").split()).casefold()


def _named_table(mapping: str) -> Callable[..., np.ndarray]:
    official, flips = NAMED_FLIPS[mapping]

    def table(n_classes: int, class_names: Sequence[str] | None,
              super_class: np.ndarray | None) -> np.ndarray:
        names = list(official) if class_names is None else list(class_names)
        if class_names is None and n_classes != len(official):
            raise LossbenchError(f"noise mapping {mapping!r} is defined on {len(official)} "
                                 f"classes; got n_classes = {n_classes}")
        if len(names) != n_classes:
            raise LossbenchError(f"The 'class_names' parameter must hold n_classes = "
                                 f"{n_classes} names. Got {len(names)} instead.")
        index = {_normalise(n): i for i, n in enumerate(names)}
        missing = sorted({n for pair in flips for n in pair if _normalise(n) not in index})
        if missing:
            raise LossbenchError(f"The 'class_names' parameter lacks {missing} needed by noise "
                                 f"mapping {mapping!r}. Got {names} instead.")
        target = np.arange(n_classes)
        for src, dst in flips:
            target[index[_normalise(src)]] = index[_normalise(dst)]
        return target

    table.__doc__ = f"Sec. 4.2 flips for {mapping}: " + ", ".join(f"{a}->{b}" for a, b in flips)
    return table


for _name in NAMED_FLIPS:
    NOISE_MAPPINGS.add(_name, _named_table(_name), family="named")


@NOISE_MAPPINGS.register("next", family="index")
def next_table(n_classes: int, class_names: Sequence[str] | None,
               super_class: np.ndarray | None) -> np.ndarray:
    """i -> (i + 1) mod c: the circular flip of Sec. 4.2 for any class count (UCI default)."""
    return (np.arange(n_classes) + 1) % n_classes


@NOISE_MAPPINGS.register("cifar100", family="index")
def cifar100_table(n_classes: int, class_names: Sequence[str] | None,
                   super_class: np.ndarray | None) -> np.ndarray:
    """Sec. 4.2: "flipping each class into the next circularly" on CIFAR-100's 100 classes."""
    if n_classes != 100:
        raise LossbenchError(f"noise mapping 'cifar100' needs n_classes = 100; got {n_classes} "
                             "(use mapping 'next' for other class counts)")
    return next_table(n_classes, class_names, super_class)


@NOISE_MAPPINGS.register("cifar100_superclass", family="index")
def superclass_table(n_classes: int, class_names: Sequence[str] | None,
                     super_class: np.ndarray | None) -> np.ndarray:
    """Next fine class within its super-class, fine classes in sorted order, circularly.

    Patrini et al. flip within CIFAR-100 super-classes. Their public code cycles within the index
    blocks {0..4}, ..., {95..99}, which are not the real super-classes (the fine labels are
    alphabetical); ``super_class=np.arange(100) // 5`` reproduces that code.
    """
    if super_class is None:
        raise LossbenchError("noise mapping 'cifar100_superclass' needs the 'super_class' "
                             "parameter: an int array [n_classes] mapping fine -> coarse class")
    coarse = np.asarray(super_class)
    if coarse.shape != (n_classes,) or not np.issubdtype(coarse.dtype, np.integer):
        raise LossbenchError(f"The 'super_class' parameter must be an integer array of shape "
                             f"({n_classes},). Got dtype {coarse.dtype} and shape "
                             f"{coarse.shape} instead.")
    target = np.arange(n_classes)
    for group in np.unique(coarse):
        members = np.flatnonzero(coarse == group)  # sorted fine order
        if members.size < 2:
            raise LossbenchError(f"The 'super_class' parameter puts only class {members[0]} in "
                                 f"super-class {group}; each super-class needs >= 2 classes")
        target[members] = np.roll(members, -1)
    return target


# -- sampling -------------------------------------------------------------------------------------

def sample_labels(y: np.ndarray, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw y_noisy[i] from row T[y[i]] (inverse CDF, one uniform draw per label, in order).

    Each row's CDF is divided by its last entry, so a zero-probability class is never drawn,
    not even through rounding.
    """
    u = rng.random(y.size)
    cdf = np.cumsum(T, axis=1)
    cdf /= cdf[:, -1:]
    out = np.empty_like(y)
    for k in np.unique(y):
        rows = np.flatnonzero(y == k)
        out[rows] = np.searchsorted(cdf[k], u[rows], side="right")
    return out


def noise_seed(dataset: str, split: str, seed: int, kind: str, rate: float) -> int:
    """A stable 32-bit seed for one (dataset, split, seed, kind, rate) cell (CRC-32).

    ``split`` names the part ("train", "val"); the rate enters as ``repr(float(rate))``.
    """
    seed = _check_seed(seed)
    rate = _check_rate(rate, 0.0, 1.0)
    parts = (str(dataset), str(split), str(seed), str(kind), repr(rate))
    return zlib.crc32("/".join(parts).encode())


def list_noise_kinds() -> list[str]:
    return NOISE_KINDS.names()


def list_mappings() -> list[str]:
    return NOISE_MAPPINGS.names()


def transition_matrix(n_classes: int, kind: str, rate: float, *, mapping: str | None = None,
                      class_names: Sequence[str] | None = None,
                      super_class: np.ndarray | None = None) -> np.ndarray:
    """The true T [c, c] of a noise kind, after validating every parameter."""
    n_classes = _check_n_classes(n_classes)
    entry = NOISE_KINDS.get(kind)
    rate = _check_rate(rate, 0.0, entry.meta["max_rate"], entry.meta["why"])
    target = None
    if entry.meta["uses_mapping"]:
        table = NOISE_MAPPINGS.get("next" if mapping is None else mapping).builder
        target = table(n_classes, class_names, super_class)
    elif mapping is not None:
        raise LossbenchError(f"The 'mapping' parameter applies to kind 'pair' only. Got "
                             f"mapping={mapping!r} with kind={kind!r}.")
    return entry.builder(n_classes, rate, target)


def corrupt(y: np.ndarray, n_classes: int, kind: str, rate: float, seed: int, *,
            mapping: str | None = None, class_names: list[str] | None = None,
            super_class: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copy of ``y`` and the true T it was drawn from; same inputs -> same labels.

    ``seed`` seeds a ``numpy.random.Generator`` (derive it with ``noise_seed``); ``mapping``,
    ``class_names`` and ``super_class`` choose the ``pair`` table (see the module docstring).
    """
    n_classes = _check_n_classes(n_classes)
    labels = _check_labels(y, n_classes)
    seed = _check_seed(seed)
    T = transition_matrix(n_classes, kind, rate, mapping=mapping, class_names=class_names,
                          super_class=super_class)
    return sample_labels(labels, T, np.random.default_rng(seed)), T


# -- measurement ----------------------------------------------------------------------------------

def _check_pair(y: np.ndarray, y_noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y), np.asarray(y_noisy)
    if a.shape != b.shape or a.ndim != 1:
        raise LossbenchError(f"The 'y' and 'y_noisy' parameters must be 1-D arrays of one "
                             f"shape. Got {a.shape} and {b.shape} instead.")
    return a, b


def realised_rate(y: np.ndarray, y_noisy: np.ndarray) -> float:
    """Share of labels that changed (NaN for no labels)."""
    a, b = _check_pair(y, y_noisy)
    return float(np.mean(a != b)) if a.size else float("nan")


def empirical_transition(y: np.ndarray, y_noisy: np.ndarray, n_classes: int) -> np.ndarray:
    """Counted flip matrix [c, c], rows normalised; a class absent from ``y`` gets a NaN row."""
    n_classes = _check_n_classes(n_classes)
    a, b = _check_pair(y, y_noisy)
    a, b = _check_labels(a, n_classes, "y"), _check_labels(b, n_classes, "y_noisy")
    counts = np.zeros((n_classes, n_classes))
    np.add.at(counts, (a, b), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / totals


# -- splits ---------------------------------------------------------------------------------------

def corrupt_split(y: np.ndarray, split: Split, n_classes: int, kind: str, rate: float, seed: int,
                  dataset_name: str, **kw: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """Corrupt the train and validation labels of one split; test labels stay clean.

    The paper holds out 10 % of the (noisy) training data for validation (Sec. 4.2), so model
    selection sees noisy labels too. Train and validation draw from their own seeds,
    ``noise_seed(dataset_name, "train" | "val", seed, kind, rate)``, so one part's noise does
    not depend on the other's size. ``kw``: ``mapping``, ``class_names``, ``super_class``.
    """
    n_classes = _check_n_classes(n_classes)
    labels = _check_labels(y, n_classes)
    seed = _check_seed(seed)
    if not (isinstance(split, Sequence) and len(split) == 3):
        raise LossbenchError("The 'split' parameter must be (train_idx, val_idx, test_idx). Got "
                             f"{type(split).__name__} of length "
                             f"{len(split) if hasattr(split, '__len__') else '?'} instead.")
    parts = []
    for part, idx in zip(("train", "val", "test"), split, strict=True):
        idx = np.asarray(idx)
        if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)) or (
                idx.size and (idx.min() < 0 or idx.max() >= labels.size)):
            raise LossbenchError(f"The 'split' parameter's {part} indexes must be a 1-D integer "
                                 f"array in [0, {labels.size - 1}].")
        parts.append(idx.astype(np.int64, copy=False))
    train, val, test = parts
    if np.intersect1d(test, np.concatenate([train, val])).size:
        raise LossbenchError("The 'split' parameter's test indexes overlap train/validation; "
                             "noise would reach test labels")
    T = transition_matrix(n_classes, kind, rate, **kw)
    y_noisy = labels.copy()
    for part, idx in (("train", train), ("val", val)):
        rng = np.random.default_rng(noise_seed(dataset_name, part, seed, kind, rate))
        y_noisy[idx] = sample_labels(labels[idx], T, rng)
    info = {"noise_kind": kind, "noise_rate": float(rate),
            "noise_realised_train": realised_rate(labels[train], y_noisy[train])}
    return y_noisy, T, info


def dump_labels(path: str | os.PathLike, y: np.ndarray, y_noisy: np.ndarray) -> Path:
    """Write ``index, y, y_noisy`` as CSV (atomically) so the noisy labels can be inspected."""
    import pandas as pd

    from bench.io import write_csv

    a, b = _check_pair(y, y_noisy)
    frame = pd.DataFrame({"index": np.arange(a.size), "y": a, "y_noisy": b})
    return write_csv(path, frame)


__all__ = [
    "CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "NAMED_FLIPS", "NOISE_KINDS", "NOISE_MAPPINGS",
    "corrupt", "corrupt_split", "dump_labels", "empirical_transition", "list_mappings",
    "list_noise_kinds", "noise_seed", "realised_rate", "register_kind",
    "sample_labels", "transition_matrix",
]
