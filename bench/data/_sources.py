"""Where the raw files come from: URL, local ``.tar.gz`` or extracted folder, with caching.

A source is resolved once into a local folder (tarballs are extracted once into the cache,
URLs downloaded once), plus a short content key so parsed caches of different sources
never mix.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bench import tempdirs
from bench.errors import LossbenchError
from bench.io import write_text

DEFAULT_DATA_URL = "http://persoal.citius.usc.es/manuel.fernandez.delgado/papers/jmlr/data.tar.gz"
DATASET2VEC_COMMIT = "eb1d090627365d966c10c8fbd34817425e81e256"
DEFAULT_SPLITS_URL = (
    f"https://raw.githubusercontent.com/hadijomaa/dataset2vec/{DATASET2VEC_COMMIT}/datasets"
)
DATA_ENV = "LOSSBENCH_UCI121"
SPLITS_ENV = "LOSSBENCH_UCI121_SPLITS"
CACHE_ENV = "LOSSBENCH_CACHE"
_URL_PREFIXES = ("http://", "https://", "file://")


class CacheWarning(UserWarning):
    """The cache cannot be used as configured (read-only, damaged); work goes on without it."""


MANIFEST_NAME = ".lossbench-manifest.json"
# temporaries of versions before owner-named ones (bench.tempdirs): removed when an hour old
_LEGACY_TEMPS = {
    "extracted": re.compile(r"^\.[0-9a-f]{16}\.[A-Za-z0-9_]{8}$"),  # mkdtemp of an extraction
    "parsed": re.compile(r"^\..+\.tmp$"),  # bench.io.atomic_write
    "sha256": re.compile(r"^\..+\.tmp$"),
}
_USABLE: dict[str, Path] = {}


def cache_dir() -> Path:
    """The cache root: ``$LOSSBENCH_CACHE`` or ``data/cache`` under the working directory.

    Checked once per process: stale temporaries of killed runs are removed, and a folder that
    cannot be written (read-only, or below a file) is replaced by a private temporary folder
    removed at exit, with a `CacheWarning`: the data are then read without caching across runs.
    """
    configured = Path(os.environ.get(CACHE_ENV) or "data/cache")
    key = str(configured.absolute())
    if key not in _USABLE:
        _USABLE[key] = _usable_cache(configured)
    return _USABLE[key]


def _usable_cache(configured: Path) -> Path:
    try:
        configured.mkdir(parents=True, exist_ok=True)
        fd, probe = tempdirs.make_file(configured, "probe")
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        try:
            tempdirs.clean_stale(tempfile.gettempdir())  # fallbacks of killed runs
            fallback = tempdirs.make_dir(tempfile.gettempdir(), "lossbench-cache")
        except OSError:
            raise LossbenchError(
                f"cache folder {configured} cannot be written ({reason}) and no temporary folder "
                f"can be made: set {CACHE_ENV} to a writable folder"
            ) from None
        atexit.register(shutil.rmtree, fallback, True)
        warnings.warn(
            f"cache folder {configured} cannot be written ({reason}); reading without a "
            f"persistent cache (set {CACHE_ENV} to a writable folder to keep it)",
            CacheWarning, stacklevel=3,
        )
        return fallback
    clean_stale_temporaries(configured)
    return configured


def clean_stale_temporaries(root: Path) -> list[Path]:
    """Remove what killed runs left in the cache (extractions, downloads, half-written files)."""
    removed = tempdirs.clean_stale(root)
    for sub, legacy in _LEGACY_TEMPS.items():
        removed += tempdirs.clean_stale(root / sub, legacy)
    downloads = root / "downloads"
    if downloads.is_dir():
        for folder in downloads.iterdir():
            removed += tempdirs.clean_stale(folder, re.compile(r"^\..+\.part$"))
    return removed


def is_url(source: str) -> bool:
    return source.startswith(_URL_PREFIXES)


def choose(source: str | os.PathLike | None, env: str, default: str) -> str:
    """Precedence: explicit argument (CLI flag or config key) > environment variable > default."""
    if source is not None and str(source) != "":
        return str(source)
    return os.environ.get(env) or default


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _memo_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, remembered on disk by (path, size, mtime) so a warm load never rehashes."""
    memo = cache_dir() / "sha256" / (hashlib.sha1(path.encode()).hexdigest() + ".json")
    stamp = {"path": path, "size": size, "mtime_ns": mtime_ns}
    try:
        saved = json.loads(memo.read_text())
        if {k: saved.get(k) for k in stamp} == stamp:
            return saved["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(Path(path))
    write_text(memo, json.dumps({**stamp, "sha256": digest}))
    return digest


def file_key(path: Path) -> str:
    stat = path.stat()
    return _memo_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def download(url: str, dest: Path, *, desc: str | None = None, hint: str | None = None) -> str:
    """Download ``url`` to ``dest`` (temp file renamed into place when complete); return sha256.

    The sha256 is also written beside the file as ``<dest>.sha256`` so a run records exactly
    which bytes it used. ``hint`` replaces the UCI advice in the failure message.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempdirs.make_file(dest.parent, dest.name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name,
                      disable=None, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            if total is not None and out.tell() != total:
                raise LossbenchError(
                    f"download of {url} is truncated: got {out.tell()} of {total} bytes"
                )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, LossbenchError):
            raise
        raise LossbenchError(
            f"cannot download {url}: {getattr(exc, 'reason', exc)} "
            f"({hint or f'set {DATA_ENV}/{SPLITS_ENV} or pass --source to use a local copy'})"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    hexdigest = digest.hexdigest()
    write_text(dest.with_name(dest.name + ".sha256"), f"{hexdigest}  {dest.name}\n")
    return hexdigest


def _manifest(folder: Path) -> dict[str, list]:
    """relative path -> [size, mtime_ns, sha256] of every file of an extraction."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            stat = path.stat()
            files[path.relative_to(folder).as_posix()] = [stat.st_size, stat.st_mtime_ns,
                                                          sha256_file(path)]
    return files


def _extract(tarball: Path, target: Path, replace: bool = False) -> Path:
    """Extract into an owner-named temporary folder with a manifest; rename it to ``target``.

    With ``replace``, an existing ``target`` (a damaged copy) is swapped out and removed;
    without, a ``target`` that another process made meanwhile wins.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempdirs.make_dir(target.parent, target.name)
    try:
        with tarfile.open(tarball, "r:*") as archive:
            archive.extractall(tmp, filter="data")
        write_text(tmp / MANIFEST_NAME, json.dumps(_manifest(tmp), sort_keys=True))
    except tarfile.FilterError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        member = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise LossbenchError(
            f"{tarball}: member {member!r} would be written outside the extraction folder "
            f"({type(exc).__name__}); refusing the tarball"
        ) from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) \
                and exc.filename is not None and Path(exc.filename) != tarball:
            raise LossbenchError(
                f"cannot extract {tarball} into the cache {target.parent}: "
                f"{exc.strerror or exc} (free space, or set {CACHE_ENV} to another folder)"
            ) from None
        raise LossbenchError(
            f"{tarball}: truncated or corrupted tarball ({type(exc).__name__}: {exc}); "
            "download it again"
        ) from None
    old = None
    if replace and target.exists():
        old = tempdirs.make_dir(target.parent, target.name + "-damaged")
        with contextlib.suppress(OSError):
            os.rename(target, old / "copy")
    try:
        os.rename(tmp, target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _extract_once(tarball: Path, key: str) -> Path:
    """Extract ``tarball`` into the cache once; return the folder."""
    target = cache_dir() / "extracted" / key[:16]
    if target.is_dir() and (target / MANIFEST_NAME).is_file():
        return target
    renew = target.is_dir()
    if renew:  # extracted before manifests existed: cannot be checked, renew it
        warnings.warn(f"re-extracting {tarball}: its cached copy {target} has no manifest",
                      CacheWarning, stacklevel=3)
    return _extract(tarball, target, replace=renew)


@lru_cache(maxsize=8)
def _read_manifest(path: str, mtime_ns: int) -> dict[str, list]:
    return json.loads(Path(path).read_text())


@dataclass(frozen=True)
class LocalSource:
    """A resolved source: ``root`` holds one folder per dataset; ``key`` identifies the content.

    For a tarball (local or downloaded), ``extracted`` is its copy in the cache and
    ``archive`` the file the user named (or the URL): messages name that, not the cache.
    """

    origin: str
    root: Path
    key: str
    extracted: Path | None = None
    archive: str | None = None
    tarball: Path | None = field(default=None, repr=False)

    def describe(self, text: str) -> str:
        """``text`` with cache paths of the extracted copy replaced by ``archive:member``."""
        if self.extracted is None:
            return text
        return text.replace(f"{self.extracted}{os.sep}", f"{self.archive}:")

    def damage(self, folder: Path, deep: bool = False) -> str | None:
        """Why the cached copy of ``folder`` differs from the tarball, or None when intact.

        Compares size and mtime of each file the manifest lists under ``folder`` (cheap, on
        every load); ``deep`` also compares sha256 (after a file failed to parse).
        """
        if self.extracted is None:
            return None
        manifest_path = self.extracted / MANIFEST_NAME
        try:
            manifest = _read_manifest(str(manifest_path), manifest_path.stat().st_mtime_ns)
        except (OSError, ValueError):
            return f"its manifest {manifest_path} is missing or unreadable"
        prefix = folder.relative_to(self.extracted).as_posix().rstrip("/") + "/"
        for rel, (size, mtime_ns, digest) in manifest.items():
            if not rel.startswith(prefix):
                continue
            path = self.extracted / rel
            try:
                stat = path.stat()
            except OSError:
                return f"{path} is missing"
            if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
                return f"{path} was changed (size {stat.st_size}, tarball member {size} bytes)"
            if deep and sha256_file(path) != digest:
                return f"{path} differs from the tarball member (sha256)"
        return None

    def repair(self, reason: str) -> None:
        """Re-extract the tarball over its damaged cached copy, saying which copy was damaged."""
        warnings.warn(f"the cached copy of {self.archive} is damaged ({reason}); "
                      "re-extracting it", CacheWarning, stacklevel=3)
        _extract(self.tarball, self.extracted, replace=True)


def _dataset_root(folder: Path, subfolders: tuple[str, ...]) -> Path:
    for sub in subfolders:
        if (folder / sub).is_dir():
            return folder / sub
    return folder


def resolve(origin: str, subfolders: tuple[str, ...], *, download_name: str) -> LocalSource:
    """Turn a URL / tarball / folder string into a local folder of dataset folders."""
    if is_url(origin):
        url_key = hashlib.sha256(origin.encode()).hexdigest()[:16]
        dest = cache_dir() / "downloads" / url_key / download_name
        if not dest.exists():
            download(origin, dest)
        path = dest
    else:
        path = Path(origin).expanduser()
    if path.is_dir():
        return LocalSource(origin, _dataset_root(path, subfolders), "dir:" + str(path.resolve()))
    if not path.is_file():
        raise LossbenchError(
            f"source {origin!r}: no such file or folder "
            "(expected a URL, a local .tar.gz or an extracted folder)"
        )
    key = file_key(path)
    try:
        folder = _extract_once(path, key)
    except LossbenchError as exc:
        if not is_url(origin):
            raise
        # a damaged download is the cache's copy, not the user's file: fetch it again, once
        warnings.warn(f"the cached download of {origin} is damaged; downloading it again",
                      CacheWarning, stacklevel=2)
        path.unlink(missing_ok=True)
        download(origin, path)
        key = file_key(path)
        try:
            folder = _extract_once(path, key)
        except LossbenchError:
            raise LossbenchError(
                f"{origin}: the downloaded file is not a readable tarball "
                f"({str(exc).split(': ', 1)[-1]})"
            ) from None
    return LocalSource(origin, _dataset_root(folder, subfolders), key, extracted=folder,
                       archive=origin, tarball=path)
