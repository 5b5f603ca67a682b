"""The data cache under faults (issue 15): unwritable, damaged or left behind by a killed run.

Each test reproduces one reported defect on a synthetic collection: before the fix it was a
traceback (OSError, EOFError) or an error blaming the user's tarball for the cache's copy.
"""

from __future__ import annotations

import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_data_load import _break, make_dataset

import bench.data as data
from bench import tempdirs
from bench.data import _sources
from bench.errors import LossbenchError


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSBENCH_UCI121", raising=False)
    monkeypatch.delenv("LOSSBENCH_UCI121_SPLITS", raising=False)


def _tarball(tmp_path: Path, **kwargs) -> tuple[Path, dict]:
    truth = make_dataset(tmp_path, **kwargs)
    tarball = tmp_path / "my data.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "data", arcname="data")
    return tarball, truth


def _extracted(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "cache" / "extracted").iterdir()
    return folder


# ---------------------------------------------------------------- (5) unwritable cache


def test_cache_below_a_file_falls_back_with_a_warning(tmp_path, monkeypatch):
    # a cache path that cannot be created (below a file) fails like a read-only one, as root too
    (tmp_path / "plain").write_text("not a folder")
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "plain" / "cache"))
    tarball, truth = _tarball(tmp_path, n1=20)
    with pytest.warns(_sources.CacheWarning, match=r"plain/cache cannot be written"):
        ds = data.load("toy", tarball)
    np.testing.assert_array_equal(ds.y, truth["y"])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_empty_read_only_cache_falls_back_with_a_warning(tmp_path, monkeypatch):
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    cache.chmod(0o555)
    monkeypatch.setenv("LOSSBENCH_CACHE", str(cache))
    tarball, truth = _tarball(tmp_path, n1=20)
    try:
        with pytest.warns(_sources.CacheWarning, match="cannot be written"):
            ds = data.load("toy", tarball)
    finally:
        cache.chmod(0o755)
    np.testing.assert_array_equal(ds.y, truth["y"])
    assert list(cache.iterdir()) == []


def test_unwritable_parsed_cache_only_warns(tmp_path, monkeypatch):
    make_dataset(tmp_path, n1=20)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bench.data.uci._load.atomic_write", full)
    with pytest.warns(_sources.CacheWarning, match="No space left on device"):
        ds = data.load("toy", tmp_path)
    assert ds.n_samples == 20


# ---------------------------------------------------------------- (8) damaged .npz cache


@pytest.mark.parametrize("damage", ["empty", "truncated", "bit_flip", "not_a_zip"])
def test_damaged_npz_cache_is_rebuilt(tmp_path, damage):
    truth = make_dataset(tmp_path, n1=30)
    data.load("toy", tmp_path)
    (npz,) = (tmp_path / "cache" / "parsed").glob("toy-*.npz")
    raw = npz.read_bytes()
    npz.write_bytes({"empty": b"", "truncated": raw[: len(raw) // 2],
                     "bit_flip": raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:],
                     "not_a_zip": b"hello" * 10}[damage])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.load("toy", tmp_path)
    np.testing.assert_allclose(ds.X, truth["X"], rtol=1e-6)
    assert any("is damaged" in str(w.message) for w in caught)
    again = data.load("toy", tmp_path)  # the rebuilt file is used silently
    np.testing.assert_array_equal(again.X, ds.X)
    assert np.load(npz)["X"].shape == (30, 3)


def test_damaged_klambauer_cache_is_rebuilt(tmp_path):
    from test_data_load import make_splits

    truth = make_dataset(tmp_path, n1=30)
    test_cols, _ = make_splits(tmp_path, "toy", truth["y"])
    data.load("toy", tmp_path, splits_source=tmp_path).splits("klambauer")
    (npz,) = (tmp_path / "cache" / "parsed").glob("toy-klambauer-*.npz")
    npz.write_bytes(b"")
    with pytest.warns(_sources.CacheWarning, match="is damaged"):
        ((_, _, test),) = data.load("toy", tmp_path, splits_source=tmp_path).splits("klambauer")
    np.testing.assert_array_equal(test, np.flatnonzero(test_cols[:, 0]))


# ---------------------------------------------------------------- (9) damaged extracted copy


def _truncate(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(True)[:-3]))


def _same_size_edit(path: Path) -> None:
    stat = path.stat()
    raw = bytearray(path.read_bytes())
    raw[-3] = ord("9") if raw[-3] != ord("9") else ord("8")
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # size and mtime as before


@pytest.mark.parametrize("damage", ["truncated_file", "deleted_folder", "same_size_edit"])
def test_damaged_extracted_copy_is_detected_named_and_reextracted(tmp_path, damage):
    tarball, truth = _tarball(tmp_path, n1=20)
    data.load("toy", tarball)
    copy = _extracted(tmp_path) / "data" / "toy"
    for npz in (tmp_path / "cache" / "parsed").glob("*.npz"):
        npz.unlink()  # force a re-parse of the damaged copy
    if damage == "truncated_file":
        _truncate(copy / "toy_R.dat")
    elif damage == "deleted_folder":
        for f in copy.iterdir():
            f.unlink()
        copy.rmdir()
    else:
        _same_size_edit(copy / "conxuntos.dat")
    with pytest.warns(_sources.CacheWarning, match=r"cached copy of .*my data\.tar\.gz is "
                      r"damaged \(.*extracted.*toy"):
        ds = data.load("toy", tarball)
    np.testing.assert_allclose(ds.X, truth["X"], rtol=1e-6)
    names = sorted(p.name for p in truth["folder"].iterdir())
    assert sorted(p.name for p in copy.iterdir()) == names


def test_errors_inside_a_tarball_name_the_member_not_the_cache(tmp_path):
    truth = make_dataset(tmp_path, n1=20)
    _break(truth["folder"], "toy.txt", "n_patrons1= 20", "n_patrons1= 21")
    tarball = tmp_path / "users.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "data", arcname="data")
    with pytest.raises(LossbenchError) as info:
        data.load("toy", tarball)
    message = str(info.value)
    assert f"{tarball}:data/toy/toy_R.dat: expected 21 data rows" in message
    assert "cache" not in message and "extracted" not in message
    # the tarball itself is wrong: the intact cached copy is not re-extracted again and again
    manifest = _extracted(tmp_path) / _sources.MANIFEST_NAME
    before = manifest.stat().st_mtime_ns
    with pytest.raises(LossbenchError):
        data.load("toy", tarball)
    assert manifest.stat().st_mtime_ns == before


def test_extraction_predating_manifests_is_renewed(tmp_path):
    tarball, truth = _tarball(tmp_path, n1=20)
    data.load("toy", tarball)
    (_extracted(tmp_path) / _sources.MANIFEST_NAME).unlink()
    with pytest.warns(_sources.CacheWarning, match="no manifest"):
        ds = data.load("toy", tarball)
    assert (_extracted(tmp_path) / _sources.MANIFEST_NAME).is_file()
    np.testing.assert_array_equal(ds.y, truth["y"])


def test_unsafe_tarball_member_is_refused_and_writes_nothing_outside(tmp_path):
    make_dataset(tmp_path, n1=10)
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep")
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as archive:
        archive.add(tmp_path / "data", arcname="data")
        info = tarfile.TarInfo("../../../sentinel.txt")
        payload = b"overwritten"
        info.size = len(payload)
        import io

        archive.addfile(info, io.BytesIO(payload))
    with pytest.raises(LossbenchError, match=r"evil\.tar\.gz: member '\.\./\.\./\.\./sentinel"):
        data.load("toy", evil)
    assert sentinel.read_text() == "keep"
    assert not any((tmp_path / "cache" / "extracted").iterdir())


# ---------------------------------------------------------------- stale temporaries


def test_stale_temporaries_of_killed_runs_are_removed_on_the_next_start(tmp_path, monkeypatch):
    cache = tmp_path / "cache2"
    extracted = cache / "extracted"
    extracted.mkdir(parents=True)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    host = tempdirs.prefix("x").split("~")[1]
    stale = extracted / f".abcdef0123456789~{host}~{dead}~k1.tmp"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "big.dat").write_bytes(b"0" * 1000)
    legacy = extracted / ".0123456789abcdef.a1b2c3d4"  # the pre-fix mkdtemp name
    legacy.mkdir()
    os.utime(legacy, (1, 1))
    live = extracted / f".fedcba9876543210~{host}~{os.getppid()}~k2.tmp"  # a live process
    live.mkdir()
    fresh_legacy = extracted / ".fedcba9876543210.zzzzzzzz"  # may belong to a running old version
    fresh_legacy.mkdir()
    parsed = cache / "parsed"
    parsed.mkdir()
    half = parsed / ".toy-1.npz.abc123.tmp"
    half.write_bytes(b"PK")
    os.utime(half, (1, 1))
    monkeypatch.setenv("LOSSBENCH_CACHE", str(cache))
    make_dataset(tmp_path, n1=10)
    data.load("toy", tmp_path)
    assert not stale.exists() and not legacy.exists() and not half.exists()
    assert live.exists() and fresh_legacy.exists()


def test_bad_downloaded_split_file_names_the_url_and_is_fetched_again(tmp_path):
    from test_data_load import _serve, make_splits

    truth = make_dataset(tmp_path, n1=20)
    make_splits(tmp_path, "toy", (truth["y"] + 1) % 2)  # labels that contradict the data
    server = _serve(tmp_path / "splits")
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(LossbenchError) as info:
            data.load("toy", tmp_path, splits_source=base).splits("klambauer")
        message = str(info.value)
        assert message.startswith(f"{base}/toy/labels_py.dat: label 1 in row 1 differs")
        assert "cache" not in message and "next run downloads it again" in message
        assert not list((tmp_path / "cache" / "downloads").rglob("*.dat"))
        make_splits(tmp_path / "fixed", "toy", truth["y"])
        for f in (tmp_path / "fixed" / "splits" / "toy").iterdir():
            f.replace(tmp_path / "splits" / "toy" / f.name)
        ((_, _, test),) = data.load("toy", tmp_path, splits_source=base).splits("klambauer")
    finally:
        server.shutdown()
    assert test.size > 0
