"""Encoded text arrays cached once as ``.npy`` and memory-mapped on load.

Tokenizing MNLI or QQP (~400k pairs) takes a minute; each job of a study loads its set again,
so the encoding is kept under ``cache_dir()/text``, keyed by the name, the options and each
input file's path, size and mtime (a changed file or tokenizer is encoded afresh).
``meta.json`` is written last: a folder without it (an interrupted write) is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import _sources
from bench.io import atomic_write, write_json

FORMAT_VERSION = "1"
Built = tuple[dict[str, np.ndarray], dict[str, Any]]


def files_key(paths: Iterable[Path]) -> str:
    """Path, size and mtime of each file (folders: every file under them), hashed."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file()) \
            if Path(path).is_dir() else [Path(path)]
        for f in files:
            stat = f.stat()
            digest.update(f"{f.resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.save would append .npy to a name
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)


def cached(name: str, key: str, build: Callable[[], Built]) -> Built:
    """Arrays + JSON meta of ``name`` under ``key``, built once when absent."""
    digest = hashlib.sha256(f"{FORMAT_VERSION}:{name}:{key}".encode()).hexdigest()[:20]
    folder = _sources.cache_dir() / "text" / f"{name}-{digest}"
    if not (folder / "meta.json").is_file():
        arrays, meta = build()
        for k, array in arrays.items():
            _save_npy(folder / f"{k}.npy", array)
        write_json(folder / "meta.json", {**meta, "arrays": sorted(arrays)})
    meta = json.loads((folder / "meta.json").read_text())
    arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False)
              for k in meta.pop("arrays")}
    return arrays, meta
