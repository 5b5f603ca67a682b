"""Temporary files and folders that name their owner, so the next start can remove stale ones.

A process killed with SIGKILL cannot clean up (issue 15: an extraction left an 11 MB
temporary folder behind). Temporaries made here are named ``.<tag>~<host>~<pid>~<random>.tmp``;
`clean_stale` removes those whose process is gone (same host) or that are older than a day
(another host: its processes cannot be checked from here).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

_SUFFIX = ".tmp"
_FOREIGN_MAX_AGE_S = 24 * 3600
_NAME = re.compile(r"^\.(?P<tag>.+)~(?P<host>[^~]*)~(?P<pid>\d+)~[^~]+\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]


def prefix(tag: str) -> str:
    """The name prefix of this process's temporaries for ``tag`` (a random part follows)."""
    return f".{tag}~{_host()}~{os.getpid()}~"


def make_dir(parent: str | os.PathLike, tag: str) -> Path:
    """A new temporary folder in ``parent`` owned by this process."""
    return Path(tempfile.mkdtemp(dir=parent, prefix=prefix(tag), suffix=_SUFFIX))


def make_file(parent: str | os.PathLike, tag: str) -> tuple[int, Path]:
    """A new temporary file in ``parent`` owned by this process: (open fd, path)."""
    fd, path = tempfile.mkstemp(dir=parent, prefix=prefix(tag), suffix=_SUFFIX)
    return fd, Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """True for an owner-named temporary whose owner is dead (or, from another host, old)."""
    match = _NAME.match(path.name)
    if match is None:
        return False
    if match["host"] == _host():
        pid = int(match["pid"])
        return pid != os.getpid() and not _alive(pid)
    try:
        age = (now or time.time()) - path.lstat().st_mtime
    except OSError:
        return False
    return age > _FOREIGN_MAX_AGE_S


def clean_stale(parent: str | os.PathLike, legacy: re.Pattern | None = None,
                legacy_age_s: float = 3600.0) -> list[Path]:
    """Remove stale temporaries directly in ``parent``; return what was removed.

    ``legacy`` matches temporaries of older versions (no owner in the name): those are removed
    when older than ``legacy_age_s``. Errors are ignored: cleaning is best effort.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        stale = is_stale(path, now)
        if _NAME.match(path.name) is None and legacy is not None and legacy.match(path.name):
            try:
                stale = now - path.lstat().st_mtime > legacy_age_s
            except OSError:
                stale = False
        if not stale:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except OSError:
                continue
        if not path.exists():
            removed.append(path)
    return removed
