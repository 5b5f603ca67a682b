"""CIFAR-10 and CIFAR-100 from the official python archives (Krizhevsky 2009).

Each batch is a pickled dict: ``b"data"`` (n x 3072 uint8: the R, G and B planes of a 32x32
image, each row-major) and the labels; ``batches.meta`` / ``meta`` hold the class names. Rows
are the train batches in order (``data_batch_1..5`` / ``train``), then the test batch, so
``test_idx`` is the last 10,000 rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.images._decode import load_pickle
from bench.data.images._source import ImageSource
from bench.errors import LossbenchError


@dataclass(frozen=True)
class CifarSpec:
    folder: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: bytes
    names_key: bytes
    n_classes: int
    coarse_key: bytes | None = None
    coarse_names_key: bytes | None = None
    n_coarse: int = 0


CIFAR10 = CifarSpec("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                    "test_batch", "batches.meta", b"labels", b"label_names", 10)
CIFAR100 = CifarSpec("cifar-100-python", ("train",), "test", "meta", b"fine_labels",
                     b"fine_label_names", 100, b"coarse_labels", b"coarse_label_names", 20)


def wanted(spec: CifarSpec):
    """Member-name filter: the batch and meta files, at the top or in ``spec.folder``."""
    names = {*spec.train, spec.test, spec.meta}

    def want(member: str) -> bool:
        parts = member.strip("/").split("/")
        return parts[-1] in names and (len(parts) == 1 or parts[-2] == spec.folder)

    return want


def _key(src: ImageSource, member: str, obj: dict, key: bytes):
    if key not in obj:
        raise src.fail(member, f"missing key {key!r}; found {sorted(obj)}")
    return obj[key]


def _labels(src: ImageSource, member: str, obj: dict, key: bytes, n: int,
            n_classes: int) -> np.ndarray:
    labels = np.asarray(_key(src, member, obj, key))
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise src.fail(member, f"{key!r} must be {n} integer labels; got shape {labels.shape} "
                               f"of {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise src.fail(member, f"{key!r} out of range: {labels.min()}..{labels.max()}, "
                               f"expected 0..{n_classes - 1}")
    return labels.astype(np.int64)


def _names(src: ImageSource, member: str, obj: dict, key: bytes, n: int) -> list[str]:
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in _key(src, member, obj, key)]
    if len(names) != n:
        raise src.fail(member, f"{key!r} lists {len(names)} names; expected {n}")
    return names


def parse(src: ImageSource, spec: CifarSpec) -> tuple[dict[str, np.ndarray], dict]:
    """Read every batch once (streamed from the archive) into X [N, 3, 32, 32], y, test_idx."""
    found: dict[str, tuple[str, dict]] = {}
    for member, data in src.members(wanted(spec)):
        base = member.rsplit("/", 1)[-1]
        if base in found:
            raise src.fail(member, f"second copy of {base} (first: {found[base][0]})")
        try:
            obj = load_pickle(data)
        except Exception as exc:  # any unpickling failure is a bad file, whatever its type
            raise src.fail(member, f"not a CIFAR python pickle ({type(exc).__name__}: {exc})") \
                from None
        if not isinstance(obj, dict):
            raise src.fail(member, f"expected a pickled dict; got {type(obj).__name__}")
        found[base] = (member, obj)
    missing = [f for f in (*spec.train, spec.test, spec.meta) if f not in found]
    if missing:
        raise LossbenchError(f"{src.shown}: no {spec.folder}/{missing[0]} "
                             f"(missing: {', '.join(missing)})")
    images, labels, coarse = [], [], []
    for fname in (*spec.train, spec.test):
        member, obj = found[fname]
        data = _key(src, member, obj, b"data")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != 3072:
            raise src.fail(member, "b'data' must be an n x 3072 uint8 array; got "
                                   f"{getattr(data, 'shape', type(data).__name__)} of "
                                   f"{getattr(data, 'dtype', '?')}")
        n = data.shape[0]
        images.append(data.reshape(n, 3, 32, 32))
        labels.append(_labels(src, member, obj, spec.label_key, n, spec.n_classes))
        if spec.coarse_key is not None:
            coarse.append(_labels(src, member, obj, spec.coarse_key, n, spec.n_coarse))
    member, meta_obj = found[spec.meta]
    meta = {"class_names": _names(src, member, meta_obj, spec.names_key, spec.n_classes)}
    y = np.concatenate(labels)
    n_test = labels[-1].size
    arrays = {"X": np.concatenate(images), "y": y,
              "test_idx": np.arange(y.size - n_test, y.size, dtype=np.int64)}
    if spec.coarse_key is not None:
        assert spec.coarse_names_key is not None
        meta["coarse_names"] = _names(src, member, meta_obj, spec.coarse_names_key, spec.n_coarse)
        coarse_y = np.concatenate(coarse)
        arrays["coarse_y"] = coarse_y
        arrays["super_class"] = _super_class(src, y, coarse_y, spec.n_classes)
    return arrays, meta


def _super_class(src: ImageSource, y: np.ndarray, coarse_y: np.ndarray,
                 n_classes: int) -> np.ndarray:
    """fine class -> its super-class (CIFAR-100: 20 groups of 5), checked to be a function."""
    pairs = np.unique(np.stack([y, coarse_y], 1), axis=0)
    if np.unique(pairs[:, 0]).size != pairs.shape[0]:
        fine = int(pairs[np.flatnonzero(np.diff(pairs[:, 0]) == 0)[0], 0])
        raise LossbenchError(f"{src.shown}: fine class {fine} has more than one coarse label")
    super_class = np.full(n_classes, -1, dtype=np.int64)
    super_class[pairs[:, 0]] = pairs[:, 1]
    return super_class
