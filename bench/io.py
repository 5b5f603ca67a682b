"""Atomic, byte-stable file writes: readers (and an interrupted run) never see half a file, and
the same content always gives the same bytes, so a rerun changes a committed artifact only when
its content changes.

The one write module of the project: `bench` and `analysis` both use it. It imports nothing
else from `bench` and no torch (`analysis` may import exactly `bench.io` and `bench.errors`);
pandas and matplotlib objects are only duck-typed here, matplotlib is imported when saving.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)

#: SVG element ids are drawn from this salt instead of a random one (matplotlib's svg.hashsalt)
SVG_HASH_SALT = "lossbench"
FIGURE_DPI = 150


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
    """Atomically write a UTF-8 text file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write a binary file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats become null; numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 1,
               sort_keys: bool = True) -> Path:
    """Atomically write ``obj`` as strict JSON (NaN/inf -> null; other objects via ``str``).

    Key-sorted by default, so the same mapping always gives the same bytes.
    """
    text = json.dumps(_json_safe(obj), indent=indent, sort_keys=sort_keys, default=str,
                      allow_nan=False)
    return write_text(path, text + "\n")


def write_csv(path: str | os.PathLike, frame: Any, **kwargs: Any) -> Path:
    """Atomically write a DataFrame as CSV without its index (``kwargs`` go to ``to_csv``).

    A ``.gz`` path is gzipped with no name and no time in its header, so the same table
    always gives the same bytes (pandas would record the random temp file's name).
    """
    kwargs.setdefault("index", False)
    if str(path).endswith(".gz"):
        return write_bytes(path, gzip.compress(frame.to_csv(**kwargs).encode(), mtime=0))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, **kwargs))


def save_figure(fig: Any, path: str | os.PathLike, bbox_inches: str | None = "tight") -> Path:
    """Save a matplotlib figure atomically; the format follows the file suffix.

    No date in the file and a fixed SVG id salt: the same figure gives the same bytes.
    """
    import matplotlib

    fmt = Path(path).suffix.lstrip(".")
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None

    def write(tmp: str) -> None:
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
            fig.savefig(tmp, format=fmt, bbox_inches=bbox_inches, dpi=FIGURE_DPI,
                        metadata=metadata)

    return atomic_write(path, write)


def save_figure_pair(fig: Any, path: str | os.PathLike,
                     bbox_inches: str | None = "tight") -> tuple[Path, Path]:
    """Save ``fig`` as PNG and SVG side by side (``path`` with suffix .png and .svg)."""
    path = Path(path)
    return (save_figure(fig, path.with_suffix(".png"), bbox_inches),
            save_figure(fig, path.with_suffix(".svg"), bbox_inches))


def read_yaml(path: str | os.PathLike, cannot_read: str) -> Any:
    """Parse a YAML file; an unreadable file or bad YAML is one LossbenchError line
    (``cannot_read`` names the file for the first case, e.g. "study 'x': cannot read f")."""
    import yaml

    from bench.errors import LossbenchError

    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise LossbenchError(f"{cannot_read} ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise LossbenchError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None

