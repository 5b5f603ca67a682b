"""Atomic file writes: readers (and an interrupted run) never see half a file."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, key-sorted JSON (stable bytes for stable input)."""
    return write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def write_csv(path: str | os.PathLike, frame: Any, **kwargs: Any) -> Path:
    """Atomically write a DataFrame as CSV without its index (``kwargs`` go to ``to_csv``).

    A ``.gz`` path is gzipped with no name and no time in its header, so the same table
    always gives the same bytes (pandas would record the random temp file's name).
    """
    kwargs.setdefault("index", False)
    if str(path).endswith(".gz"):
        data = gzip.compress(frame.to_csv(**kwargs).encode(), mtime=0)
        return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, **kwargs))
