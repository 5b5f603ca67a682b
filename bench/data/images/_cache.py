"""Parsed image arrays cached once as ``.npy`` and memory-mapped on load.

A CIFAR-size set then starts in milliseconds and costs no RAM until read (STYLE.md section 6:
the trainer copies it to the device once). Each array is written atomically; ``meta.json`` is
written last, so a folder without it (an interrupted parse) is parsed again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.data import _sources
from bench.io import atomic_write, write_json

FORMAT_VERSION = "1"
Parsed = tuple[dict[str, np.ndarray], dict[str, Any]]


def cache_folder(name: str, source_key: str) -> Path:
    key = hashlib.sha256(f"{FORMAT_VERSION}:{name}:{source_key}".encode()).hexdigest()[:20]
    return _sources.cache_dir() / "images" / f"{name}-{key}"


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.save would append .npy to a name
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)


def _load(folder: Path) -> Parsed:
    meta = json.loads((folder / "meta.json").read_text())
    arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False)
              for k in meta.pop("arrays")}
    return arrays, meta


def cached(name: str, source_key: str, parse: Callable[[], Parsed]) -> Parsed:
    """Arrays + JSON meta of ``name`` from the cache, parsing the source once when absent."""
    folder = cache_folder(name, source_key)
    if (folder / "meta.json").is_file():
        return _load(folder)
    arrays, meta = parse()
    for key, array in arrays.items():
        _save_npy(folder / f"{key}.npy", array)
    write_json(folder / "meta.json", {**meta, "arrays": sorted(arrays)})
    return _load(folder)
