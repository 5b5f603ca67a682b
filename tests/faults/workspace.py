"""The sandbox a fault case runs in, the builders of bad input, and injectable faults.

Layout of a workspace (``root`` is a fresh tmp folder)::

    root/sentinel.txt     beside the output folder: must keep its hash
    root/out/earlier.txt  written "by an earlier run": must survive every case
    root/inputs/          the user's files (a valid scores.csv, collections, tarballs)
    root/cache/           $LOSSBENCH_CACHE (the only place besides out/ a case may change)
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_data_load import make_dataset, make_splits

EARLIER = "results of an earlier run\n"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = root / "inputs"
        self.out = root / "out"
        self.cache = root / "cache"
        self.inputs.mkdir()
        self.out.mkdir()
        (root / "sentinel.txt").write_text("do not touch\n")
        (self.out / "earlier.txt").write_text(EARLIER)
        self.scores = self.inputs / "scores.csv"
        scores_table().to_csv(self.scores, index=False)
        self.places: dict[str, str] = {"inputs": str(self.inputs), "out": str(self.out),
                                       "cache": str(self.cache), "scores": str(self.scores)}

    def path(self, key: str) -> Path:
        return Path(self.places[key])

    def snapshot(self) -> dict[str, str]:
        """sha256 of every file outside out/ and cache/, plus out/earlier.txt."""
        digests = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if rel.parts[0] in ("out", "cache") and rel != Path("out/earlier.txt"):
                continue
            if path.is_file():
                digests[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        return digests


# ---------------------------------------------------------------- score tables


def scores_table(methods=("ce", "el", "focal"), n: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n):
        base = rng.uniform(60, 90)
        for j, m in enumerate(methods):
            rows.append({"dataset": f"d{d}", "method": m,
                         "score": round(base + j + rng.normal(0, 1), 2)})
    return pd.DataFrame(rows)


def write_scores(ws: Workspace, frame: pd.DataFrame, name: str = "bad.csv",
                 key: str = "bad") -> None:
    path = ws.inputs / name
    frame.to_csv(path, index=False)
    ws.places[key] = str(path)


def write_bytes(ws: Workspace, data: bytes, name: str, key: str = "bad") -> None:
    (ws.inputs / name).write_bytes(data)
    ws.places[key] = str(ws.inputs / name)


def with_score(value) -> pd.DataFrame:
    frame = scores_table().astype({"score": object})
    frame.loc[3, "score"] = value
    return frame


# ---------------------------------------------------------------- dataset collections


def collection(ws: Workspace, folder: str = "collection", key: str = "source",
               n1: int = 20) -> dict:
    """A source folder holding one dataset ``toy`` in the UCI-121 file format."""
    root = ws.inputs / folder
    root.mkdir(parents=True)
    ws.places[key] = str(root)
    return make_dataset(root, name="toy", n1=n1)


def tarball(ws: Workspace, name: str = "my data.tar.gz", key: str = "source",
            edit=None) -> Path:
    """A .tar.gz of a one-dataset collection (``edit(folder)`` may break it first)."""
    root = ws.root / "build"
    truth = make_dataset(root, name="toy", n1=20)
    if edit is not None:
        edit(truth["folder"])
    path = ws.inputs / name
    with tarfile.open(path, "w:gz") as archive:
        archive.add(root / "data", arcname="data")
    import shutil

    shutil.rmtree(root)
    ws.places[key] = str(path)
    return path


def unsafe_tarball(ws: Workspace) -> None:
    """A tarball whose member climbs out of the extraction folder onto the sentinel."""
    path = tarball(ws, name="evil.tar.gz")
    raw = io.BytesIO()
    with tarfile.open(path, "r:gz") as src, tarfile.open(fileobj=raw, mode="w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("../../../sentinel.txt")  # cache/extracted/<tmp>/ -> root/
        payload = b"overwritten\n"
        info.size = len(payload)
        dst.addfile(info, io.BytesIO(payload))
    path.write_bytes(raw.getvalue())


def splits(ws: Workspace, truth: dict, edit=None) -> None:
    root = ws.inputs / "splits source"
    make_splits(root, "toy", truth["y"])
    if edit is not None:
        edit(root / "splits" / "toy")
    ws.places["splits"] = str(root)


def drop_last_lines(path: Path, n: int = 3) -> None:
    path.write_text("".join(path.read_text().splitlines(True)[:-n]))


def replace_in(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


# ---------------------------------------------------------------- injected faults


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``folder`` behave as read-only, for root too (root ignores permission bits).

    Creating, writing or renaming anything below it fails with EACCES, as on a read-only
    folder; reading is unaffected.
    """
    top = os.path.abspath(folder)

    def inside(path) -> bool:
        try:
            full = os.path.abspath(os.fspath(path))
        except TypeError:  # a file descriptor
            return False
        return full == top or full.startswith(top + os.sep)

    def deny(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    real_open, real_mkdir, real_access = os.open, os.mkdir, os.access
    real_replace, real_rename, real_bopen = os.replace, os.rename, builtins.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & writing and inside(path):
            deny(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if inside(path):
            if os.path.isdir(path):
                raise FileExistsError(errno.EEXIST, "File exists", str(path))
            deny(path)
        return real_mkdir(path, mode, dir_fd=dir_fd)

    def access(path, mode, **kwargs):
        if mode & os.W_OK and inside(path):
            return False
        return real_access(path, mode, **kwargs)

    def move(real):
        def wrapped(src, dst, **kwargs):
            if inside(src) or inside(dst):
                deny(dst)
            return real(src, dst, **kwargs)
        return wrapped

    def bopen(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and inside(file):
            deny(file)
        return real_bopen(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "replace", move(real_replace))
    monkeypatch.setattr(os, "rename", move(real_rename))
    monkeypatch.setattr(builtins, "open", bopen)
    monkeypatch.setattr(io, "open", bopen)


def disk_full_after(monkeypatch: pytest.MonkeyPatch, n_ok: int) -> None:
    """`bench.io.atomic_write` fails with ENOSPC after ``n_ok`` successful writes."""
    import bench.io

    real = bench.io.atomic_write
    count = {"n": 0}

    def atomic_write(path, write):
        count["n"] += 1
        if count["n"] > n_ok:
            def partial(tmp: str) -> None:  # half a file, then the disk is full
                Path(tmp).write_bytes(b"half a fi")
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(path, partial)
        return real(path, write)

    monkeypatch.setattr(bench.io, "atomic_write", atomic_write)
