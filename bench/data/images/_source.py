"""Where an image set's files come from, and how their members are read without extracting.

A source is what the user gave (``--source``, a loader option or ``LOSSBENCH_<NAME>``): an
archive (``.tar.gz`` / ``.tar`` / ``.zip``), an extracted folder, or a URL (downloaded once
into the cache, its published md5 checked). Members are streamed straight out of an archive,
so a 170 MB tarball is read once and never unpacked beside its parsed ``.npy`` cache. Every
error names what the user gave (``archive: member``, or the file in their folder), never a
cache path.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.data import _sources
from bench.errors import DatasetMissingError, LossbenchError

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error)


@dataclass(frozen=True)
class SourceSpec:
    """How one dataset's source is found: its env variable, what is expected, published md5s.

    ``files`` are fetched one by one when the source is a base URL (MNIST has no archive);
    ``subfolders``: a folder holding one of these is read from there (a parent of
    ``cifar-10-batches-py/`` is walked no further than it).
    """

    env: str
    expected: str
    md5: dict[str, str]
    files: tuple[str, ...] = ()
    subfolders: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageSource:
    """A located source: ``path`` is a local archive or folder; ``shown`` what the user gave."""

    name: str
    shown: str
    path: Path

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir()

    def where(self, member: str) -> str:
        """How an error names ``member``: the file in the user's folder, or ``archive: member``."""
        return str(self.path / member) if self.is_dir else f"{self.shown}: {member}"

    def fail(self, member: str, problem: str) -> LossbenchError:
        return LossbenchError(f"{self.where(member)}: {problem}")

    def key(self, want: Callable[[str], bool]) -> str:
        """Content key for the parsed cache: an archive's sha256 (memoised by the UCI code), or
        the name, size and mtime of each wanted file of a folder."""
        if not self.is_dir:
            return _sources.file_key(self.path)
        digest = hashlib.sha256(str(self.path.resolve()).encode())
        for rel, full in _walk(self.path):
            if want(rel):
                stat = full.stat()
                digest.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()

    def members(self, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
        """(posix name, bytes) of each wanted file, in archive (or sorted folder) order."""
        if self.is_dir:
            for rel, full in _walk(self.path):
                if want(rel):
                    yield rel, full.read_bytes()
            return
        try:
            if zipfile.is_zipfile(self.path):
                with zipfile.ZipFile(self.path) as archive:
                    for info in archive.infolist():
                        if not info.is_dir() and want(info.filename):
                            yield info.filename, archive.read(info)
                return
            with tarfile.open(self.path, "r:*") as archive:
                for member in archive:
                    if member.isfile() and want(member.name):
                        handle = archive.extractfile(member)
                        assert handle is not None, member.name
                        yield member.name, handle.read()
        except _READ_ERRORS as exc:
            raise LossbenchError(
                f"{self.shown}: truncated or corrupted archive ({type(exc).__name__}: {exc}); "
                "download it again"
            ) from None


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Files under ``root`` as (posix path relative to root, full path), sorted."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        rel_base = base.relative_to(root).as_posix()
        for fname in sorted(files):
            yield (fname if rel_base == "." else f"{rel_base}/{fname}"), base / fname


def not_configured(name: str, spec: SourceSpec) -> DatasetMissingError:
    return DatasetMissingError(
        f"dataset {name!r} is not configured: set --source or {spec.env} "
        f"(expected {spec.expected})"
    )


def locate(name: str, spec: SourceSpec, source: str | os.PathLike | None) -> ImageSource:
    """Resolve ``source`` (argument > ``spec.env``); no default: these sets are not shipped."""
    origin = _sources.choose(source, spec.env, "")
    if not origin:
        raise not_configured(name, spec)
    if _sources.is_url(origin):
        return ImageSource(name, origin, _fetch(name, spec, origin))
    path = Path(origin).expanduser()
    if not path.exists():
        raise LossbenchError(
            f"source {origin!r} of dataset {name!r}: no such file or folder "
            f"(expected {spec.expected})"
        )
    for sub in spec.subfolders if path.is_dir() else ():
        if (path / sub).is_dir():
            return ImageSource(name, origin, path / sub)
    return ImageSource(name, origin, path)


def _fetch(name: str, spec: SourceSpec, url: str) -> Path:
    """Download an archive URL (or each of ``spec.files`` under a base URL) once; check md5s."""
    folder = _sources.cache_dir() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16]
    if url.rstrip("/").endswith(_ARCHIVE_SUFFIXES):
        fname = url.rstrip("/").rsplit("/", 1)[-1]
        _download_checked(f"{url}", folder / fname, spec)
        return folder / fname
    if not spec.files:
        raise LossbenchError(
            f"source {url!r} of dataset {name!r}: expected the URL of an archive "
            f"({', '.join(_ARCHIVE_SUFFIXES)}); got neither an archive nor a folder of files"
        )
    for fname in spec.files:
        _download_checked(f"{url.rstrip('/')}/{fname}", folder / fname, spec)
    return folder


def _download_checked(url: str, dest: Path, spec: SourceSpec) -> None:
    if dest.is_file():  # downloaded (and checked) before
        return
    _sources.download(url, dest, hint=f"set {spec.env} or pass --source to use a local copy")
    expected = spec.md5.get(dest.name)
    if expected is None:
        return
    got = md5_file(dest)
    if got != expected:
        dest.unlink(missing_ok=True)
        dest.with_name(dest.name + ".sha256").unlink(missing_ok=True)
        raise LossbenchError(
            f"download of {url}: md5 {got} differs from the published {expected}; "
            "the file is corrupt or not the official one"
        )


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
