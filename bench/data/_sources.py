"""Where the raw files come from: URL, local ``.tar.gz`` or extracted folder, with caching.

A source is resolved once into a local folder (tarballs are extracted once into the cache,
URLs downloaded once), plus a short content key so parsed caches of different sources
never mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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


def cache_dir() -> Path:
    """The cache root: ``$LOSSBENCH_CACHE`` or ``data/cache`` under the working directory."""
    return Path(os.environ.get(CACHE_ENV) or "data/cache")


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
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
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


def _extract_once(tarball: Path, key: str) -> Path:
    """Extract ``tarball`` into the cache once (temp folder renamed into place); return it."""
    target = cache_dir() / "extracted" / key[:16]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with tarfile.open(tarball, "r:*") as archive:
            archive.extractall(tmp, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LossbenchError(
            f"{tarball}: truncated or corrupted tarball ({type(exc).__name__}: {exc}); "
            "download it again"
        ) from None
    try:
        os.rename(tmp, target)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class LocalSource:
    """A resolved source: ``root`` holds one folder per dataset; ``key`` identifies the content."""

    origin: str
    root: Path
    key: str


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
    folder = _extract_once(path, key)
    return LocalSource(origin, _dataset_root(folder, subfolders), key)
