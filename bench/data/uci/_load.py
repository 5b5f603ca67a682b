"""Load one dataset: resolve the source, parse + validate once, cache as ``.npz``, split lazily."""

from __future__ import annotations

import csv
import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from bench.data import _sources
from bench.data.uci import _parse
from bench.data.uci._names import COLLECTION
from bench.errors import DatasetMissingError, LossbenchError
from bench.io import atomic_write

FORMAT_VERSION = "1"
SPLIT_FILES = ("folds_py.dat", "labels_py.dat", "validation_folds_py.dat")
MANIFEST = resources.files("bench.data.uci") / "klambauer_splits_sha256.csv"  # package data


@dataclass(eq=False)
class Dataset:
    """A parsed UCI dataset: ``X``/``y`` hold fich1 rows followed by fich2 rows.

    Follows ``bench.data.Dataset``; the index files (``conxuntos``, ``kfold``) and the
    Klambauer split source are what the UCI split protocols read.
    """

    name: str
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    n_classes: int
    conxuntos: tuple[np.ndarray, np.ndarray] = field(repr=False)
    kfold: tuple[np.ndarray, ...] = field(repr=False)
    splits_source: str | None = field(default=None, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    family: str = "uci"
    class_names: list[str] | None = None

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_features,)

    def splits(self, protocol: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(train_idx, val_idx, test_idx) int64 arrays into ``X``; see README 'Split protocols'."""
        from bench.data._registry import make_splits

        if protocol not in self._memo:
            self._memo[protocol] = make_splits(self, protocol)
        return [tuple(a.copy() for a in split) for split in self._memo[protocol]]


def names(source: str | os.PathLike | None = None) -> list[str]:
    """The collection's names, sorted. With a source: the dataset folders that source holds."""
    if source is None:
        return list(COLLECTION)
    local = _data_source(source)
    return sorted(p.name for p in local.root.iterdir() if (p / f"{p.name}.txt").is_file())


def _data_source(source) -> _sources.LocalSource:
    origin = _sources.choose(source, _sources.DATA_ENV, _sources.DEFAULT_DATA_URL)
    return _sources.resolve(origin, ("data",), download_name="data.tar.gz")


def _stat_key(*parts: object, files: list[Path]) -> str:
    digest = hashlib.sha256(repr((FORMAT_VERSION, *parts)).encode())
    for path in files:
        try:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        except FileNotFoundError:
            digest.update(f"{path.name}:absent;".encode())
    return digest.hexdigest()[:20]


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Cache parsed arrays; a cache that cannot be written (disk full) only costs a re-parse."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append .npz to a name
            np.savez(handle, **arrays)

    try:
        atomic_write(path, write)
    except OSError as exc:
        warnings.warn(f"cannot write the cache file {path} ({exc.strerror or exc}); "
                      "the dataset will be parsed again next time", _sources.CacheWarning,
                      stacklevel=3)


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (and the file removed) when it is absent or damaged.

    A 0-byte or truncated file (a full disk, a killed copy) raises EOFError/BadZipFile in
    np.load, a flipped bit a CRC error on reading the member: any of these means rebuild.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in keys}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        warnings.warn(f"cache file {path} is damaged ({type(exc).__name__}); rebuilding it",
                      _sources.CacheWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    return arrays


_DATASET_KEYS = ("X", "y", "n_classes", "conx_train", "conx_test",
                 *(f"kfold{i}" for i in range(8)))


def _valid_dataset_arrays(z: dict[str, np.ndarray]) -> bool:
    X, y = z["X"], z["y"]
    return (X.ndim == 2 and X.dtype == np.float32 and y.ndim == 1 and y.dtype == np.int64
            and X.shape[0] == y.shape[0] and z["n_classes"].shape == ()
            and all(z[k].ndim == 1 and z[k].dtype.kind == "i" for k in _DATASET_KEYS[3:]))


def _check_name(name: str, folder: Path) -> None:
    if not isinstance(name, str):
        raise LossbenchError(f"dataset name must be a str, got {type(name).__name__}")
    if name not in COLLECTION and not folder.is_dir():
        raise LossbenchError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(COLLECTION[:5])}, ... "
            "(see `lossbench datasets`)"
        )


def load(name: str, source: str | os.PathLike | None = None,
         splits_source: str | os.PathLike | None = None) -> Dataset:
    """Load, validate and cache one dataset.

    Raises ``DatasetMissingError`` when the source lacks the dataset's files (the offline
    mirror lacks ``miniboone_R.dat``) and ``LossbenchError`` for any malformed file, naming
    the user's file (``data.tar.gz:data/<name>/<file>`` for a tarball, not the cache). A
    damaged cached copy of a tarball is detected, reported and re-extracted.
    """
    local = _data_source(source)
    folder = local.root / str(name)
    splits_origin = None if splits_source is None else str(splits_source)
    return _checked(local, folder, lambda: _load_folder(name, local, folder, splits_origin))


def _checked(local: _sources.LocalSource | None, folder: Path, read):
    """``read()`` a dataset folder of ``local``, repairing a damaged cached copy of a tarball.

    The cheap check (sizes, mtimes) runs first; a file that then fails to parse gets the deep
    check (sha256) so a damaged copy is re-extracted, once, instead of blamed on the tarball.
    Errors name ``archive:member``, never the cache path.
    """
    if local is None:
        return read()
    damage = local.damage(folder)
    if damage is not None:
        local.repair(damage)
    try:
        return read()
    except LossbenchError as exc:
        damage = local.damage(folder, deep=True)
        if damage is None:
            raise type(exc)(local.describe(str(exc))) from None
    local.repair(damage)
    try:
        return read()
    except LossbenchError as exc:
        raise type(exc)(local.describe(str(exc))) from None


def _load_folder(name: str, local: _sources.LocalSource, folder: Path,
                 splits_origin: str | None) -> Dataset:
    _check_name(name, folder)
    meta_path = folder / f"{name}.txt"
    if not meta_path.is_file():
        raise DatasetMissingError(f"dataset {name!r} is missing from source {local.origin}")
    index_files = [folder / "conxuntos.dat", folder / "conxuntos_kfold.dat"]
    meta_files = [meta_path, *index_files]
    # the .txt names the data files, so the cache key needs it parsed (cheap)
    meta = _parse.parse_meta(meta_path)
    data_files = [folder / f for f in meta.files]
    key = _stat_key(local.key, name, files=meta_files + data_files)
    cache = _sources.cache_dir() / "parsed" / f"{name}-{key}.npz"
    z = _read_npz(cache, _DATASET_KEYS)
    if z is not None and _valid_dataset_arrays(z):
        return Dataset(
            name, z["X"], z["y"], int(z["n_classes"]), (z["conx_train"], z["conx_test"]),
            tuple(z[f"kfold{i}"] for i in range(8)), splits_origin,
        )
    for path in data_files:
        if not path.is_file():
            raise DatasetMissingError(
                f"dataset {name!r} is missing from source {local.origin}: {path.name} not found"
            )
    parts = [
        _parse.parse_rdat(path, rows, meta.n_features, meta.n_classes)
        for path, rows in zip(data_files, meta.rows, strict=True)
    ]
    X = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    n1 = meta.rows[0]
    conx = _parse.parse_index_lines(index_files[0], 2)
    _parse.check_pair(index_files[0], conx[0], conx[1], n1, 1)
    for line, expected in ((0, meta.n_train), (1, meta.n_val)):
        if expected is not None and conx[line].size != expected:
            raise LossbenchError(
                f"{index_files[0]}: line {line + 1} has {conx[line].size} indexes, "
                f"{meta_path.name} says {expected}"
            )
    kfold = _parse.parse_index_lines(index_files[1], 8)
    for k in range(4):
        _parse.check_pair(index_files[1], kfold[2 * k], kfold[2 * k + 1], n1, 2 * k + 1)
    arrays = {"X": X, "y": y, "n_classes": np.int64(meta.n_classes),
              "conx_train": conx[0], "conx_test": conx[1]}
    arrays.update({f"kfold{i}": kfold[i] for i in range(8)})
    _save_npz(cache, **arrays)
    return Dataset(name, X, y, meta.n_classes, (conx[0], conx[1]), tuple(kfold), splits_origin)


# ---------------------------------------------------------------- Klambauer split files


@lru_cache(maxsize=1)
def _manifest() -> dict[tuple[str, str], str]:
    if not MANIFEST.is_file():
        warnings.warn(f"{MANIFEST} not found: Klambauer split files are not checksum-verified",
                      stacklevel=3)
        return {}
    with MANIFEST.open(newline="") as handle:
        return {(r["name"], r["file"]): r["sha256"] for r in csv.DictReader(handle)}


def _splits_folder(name: str, splits_source) -> tuple[Path, str, _sources.LocalSource | None]:
    """Folder holding ``name``'s three split files, a key for the parsed cache, the source."""
    origin = _sources.choose(splits_source, _sources.SPLITS_ENV, _sources.DEFAULT_SPLITS_URL)
    if _sources.is_url(origin) and not origin.endswith((".tar.gz", ".tgz", ".tar")):
        # a base URL (the pinned dataset2vec commit): fetch the three files of this dataset
        url_key = hashlib.sha256(origin.encode()).hexdigest()[:16]
        folder = _sources.cache_dir() / "downloads" / url_key / name
        for fname in SPLIT_FILES:
            if not (folder / fname).is_file():
                _sources.download(f"{origin.rstrip('/')}/{name}/{fname}", folder / fname)
        return folder, "url:" + origin, None
    local = _sources.resolve(origin, ("splits", "datasets"), download_name="splits.tar.gz")
    return local.root / name, local.key, local


def load_klambauer(name: str, y: np.ndarray, splits_source=None) -> tuple[np.ndarray, np.ndarray]:
    """The (n x 4) ``folds_py`` and ``validation_folds_py`` matrices, verified and cached."""
    folder, source_key, local = _splits_folder(name, splits_source)
    if local is not None:
        return _checked(local, folder, lambda: _read_klambauer(name, y, folder, source_key))
    try:  # downloaded from a base URL: a bad file is the URL's, and its copy must go
        return _read_klambauer(name, y, folder, source_key)
    except LossbenchError as exc:
        for fname in SPLIT_FILES:
            (folder / fname).unlink(missing_ok=True)
        url = f"{source_key.removeprefix('url:').rstrip('/')}/{name}/"
        message = str(exc).replace(f"{folder}{os.sep}", url)
        raise type(exc)(f"{message} (the downloaded copy was removed: the next run downloads "
                        "it again)") from None


def _read_klambauer(name: str, y: np.ndarray, folder: Path,
                    source_key: str) -> tuple[np.ndarray, np.ndarray]:
    files = [folder / f for f in SPLIT_FILES]
    key = _stat_key(source_key, name, "klambauer", files=files)
    cache = _sources.cache_dir() / "parsed" / f"{name}-klambauer-{key}.npz"
    z = _read_npz(cache, ("folds", "val_folds"))
    if z is not None and z["folds"].shape == z["val_folds"].shape == (y.size, 4):
        return z["folds"], z["val_folds"]
    manifest = _manifest()
    for path in files:
        if not path.is_file():
            raise DatasetMissingError(f"Klambauer split file {path} not found")
        expected = manifest.get((name, path.name))
        if expected is not None and _sources.sha256_file(path) != expected:
            raise LossbenchError(
                f"{path}: sha256 differs from {MANIFEST.name} (expected {expected[:12]}...); "
                "the split file is not the pinned Klambauer copy"
            )
    n = y.size
    labels = _parse.parse_labels(files[1], n)
    if not np.array_equal(labels, y):
        row = int(np.flatnonzero(labels != y)[0])
        raise LossbenchError(
            f"{files[1]}: label {labels[row]} in row {row + 1} differs from the data label {y[row]}"
        )
    folds = _parse.parse_split_matrix(files[0], n)
    val_folds = _parse.parse_split_matrix(files[2], n)
    both = (folds == 1) & (val_folds == 1)
    if both.any():
        row, col = (int(v[0]) for v in np.nonzero(both))
        raise LossbenchError(
            f"{files[2]}: row {row + 1} column {col} is both validation and test ({files[0].name})"
        )
    _save_npz(cache, folds=folds, val_folds=val_folds)
    return folds, val_folds
