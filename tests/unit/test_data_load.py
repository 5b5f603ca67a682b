"""bench.data on small synthetic collections written in the real file format."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

import bench.data as data
from bench.data import _sources
from bench.errors import DatasetMissingError, LossbenchError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSBENCH_UCI121", raising=False)
    monkeypatch.delenv("LOSSBENCH_UCI121_SPLITS", raising=False)


def _write_rdat(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    header = "\t" + "\t".join(f"f{i + 1}" for i in range(X.shape[1])) + "\tclase\n"
    rows = [
        "\t".join([str(i + 1), *(f"{v:g}" for v in x), str(int(c))]) + "\n"
        for i, (x, c) in enumerate(zip(X, y, strict=True))
    ]
    path.write_text(header + "".join(rows))


def make_dataset(
    root: Path,
    name: str = "toy",
    n1: int = 40,
    n2: int = 0,
    d: int = 3,
    n_classes: int = 2,
    seed: int = 0,
) -> dict:
    """Write one dataset folder (``.txt``, ``_R.dat``, conxuntos, kfold) and return its truth."""
    rng = np.random.default_rng(seed)
    folder = root / "data" / name
    folder.mkdir(parents=True)
    X = rng.normal(size=(n1 + n2, d)).round(4)
    y = np.arange(n1 + n2) % n_classes
    files = [f"{name}_R.dat"] if n2 == 0 else [f"{name}_train_R.dat", f"{name}_test_R.dat"]
    _write_rdat(folder / files[0], X[:n1], y[:n1])
    if n2:
        _write_rdat(folder / files[1], X[n1:], y[n1:])
    perm = rng.permutation(n1)
    half = n1 // 2
    (folder / "conxuntos.dat").write_text(
        " ".join(map(str, perm[:half])) + " \n" + " ".join(map(str, perm[half:])) + " \n"
    )
    kfold = []
    for _ in range(4):
        p = rng.permutation(n1)
        cut = n1 * 3 // 4
        kfold += [p[:cut], p[cut:]]
    (folder / "conxuntos_kfold.dat").write_text(
        "".join(" ".join(map(str, k)) + " \n" for k in kfold)
    )
    txt = [
        f"n_entradas= {d}",
        f"n_clases= {n_classes}",
        f"n_arquivos= {1 + bool(n2)}",
        f"fich1= {files[0]}",
        f"n_patrons1= {n1}",
    ]
    if n2:
        txt += [f"fich2= {files[1]}", f"n_patrons2= {n2}"]
    txt += [f"n_patrons_entrena= {half}", f"n_patrons_valida= {n1 - half}", "n_conxuntos= 1"]
    (folder / f"{name}.txt").write_text("\n".join(txt) + "\n")
    return {"X": X, "y": y, "conx": (perm[:half], perm[half:]), "kfold": kfold, "folder": folder}


def make_splits(root: Path, name: str, y: np.ndarray, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = y.size
    test = (rng.random((n, 4)) < 0.25).astype(int)
    val = ((rng.random((n, 4)) < 0.25) & (test == 0)).astype(int)
    folder = root / "splits" / name
    folder.mkdir(parents=True)
    np.savetxt(folder / "folds_py.dat", test, fmt="%d", delimiter=",")
    np.savetxt(folder / "validation_folds_py.dat", val, fmt="%d", delimiter=",")
    np.savetxt(folder / "labels_py.dat", y, fmt="%d")
    return test, val


def test_load_matches_files_and_is_deterministic(tmp_path):
    truth = make_dataset(tmp_path, n1=30, n2=10, n_classes=3)
    ds = data.load("toy", tmp_path)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.shape == (40, 3) and ds.n_features == 3 and ds.n_classes == 3
    np.testing.assert_allclose(ds.X, truth["X"], rtol=1e-6)
    np.testing.assert_array_equal(ds.y, truth["y"])
    again = data.load("toy", tmp_path)  # from the npz cache
    np.testing.assert_array_equal(again.X, ds.X)
    for protocol in ("holdout", "kfold4"):
        for a, b in zip(ds.splits(protocol), again.splits(protocol), strict=True):
            for x, z in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, z)


def test_tarball_and_folder_give_same_arrays(tmp_path):
    make_dataset(tmp_path, n1=25)
    tarball = tmp_path / "data.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "data", arcname="data")
    a, b = data.load("toy", tmp_path), data.load("toy", tarball)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert data.names(tarball) == ["toy"]


def test_changed_source_is_not_served_from_stale_cache(tmp_path):
    truth = make_dataset(tmp_path, n1=20)
    first = data.load("toy", tmp_path)
    X = truth["X"][:20] + 1.0
    _write_rdat(truth["folder"] / "toy_R.dat", X, truth["y"][:20])
    second = data.load("toy", tmp_path)
    np.testing.assert_allclose(second.X, X, rtol=1e-6)
    assert not np.allclose(first.X, second.X)


def _break(folder: Path, file: str, old: str, new: str, count: int = 1) -> None:
    path = folder / file
    path.write_text(path.read_text().replace(old, new, count))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: _break(f, "toy.txt", "n_patrons1= 20", "n_patrons1= 21"),
            r"toy_R\.dat: expected 21 data rows",
        ),
        (
            lambda f: _break(f, "toy.txt", "n_entradas= 3", "n_entradas= 4"),
            r"toy_R\.dat: expected 4 features",
        ),
        (
            lambda f: _break(f, "toy_R.dat", "\t0\n", "\t7\n"),
            r"toy_R\.dat: label 7 in data row \d+ is outside 0\.\.1",
        ),
        (lambda f: _break(f, "toy_R.dat", "\t0\n", "\tabc\n"), r"toy_R\.dat: unreadable numbers"),
        (
            lambda f: _break(f, "conxuntos.dat", " \n", " 99 \n"),
            r"conxuntos\.dat: line 1: index 99 out of range 0\.\.19",
        ),
        (
            lambda f: (f / "toy_R.dat").write_text(
                "".join((f / "toy_R.dat").read_text().splitlines(True)[:-3])
            ),
            r"toy_R\.dat: expected 20 data rows \(\.txt\), got 17",
        ),
        (lambda f: _break(f, "toy.txt", "n_clases= 2\n", ""), r"toy\.txt: missing key 'n_clases='"),
    ],
    ids=[
        "short_count",
        "feature_count",
        "bad_label",
        "bad_number",
        "bad_index",
        "short_file",
        "no_key",
    ],
)
def test_broken_files_give_one_line_naming_the_file(tmp_path, edit, message):
    truth = make_dataset(tmp_path, n1=20)
    edit(truth["folder"])
    with pytest.raises(LossbenchError, match=message) as info:
        data.load("toy", tmp_path)
    assert "\n" not in str(info.value)


def test_duplicated_and_overlapping_indexes(tmp_path):
    truth = make_dataset(tmp_path, n1=20)
    train, test = truth["conx"]
    path = truth["folder"] / "conxuntos.dat"
    path.write_text(
        " ".join(map(str, [*train, train[0]])) + " \n" + " ".join(map(str, test)) + " \n"
    )
    with pytest.raises(LossbenchError, match=r"conxuntos\.dat: line 1: 1 duplicated indexes"):
        data.load("toy", tmp_path)
    path.write_text(
        " ".join(map(str, train)) + " \n" + " ".join(map(str, [*test, train[0]])) + " \n"
    )
    with pytest.raises(LossbenchError, match=r"conxuntos\.dat: lines 1 and 2 overlap in 1"):
        data.load("toy", tmp_path)


def test_corrupt_and_truncated_tarball(tmp_path):
    make_dataset(tmp_path, n1=200, d=20)
    tarball = tmp_path / "data.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "data", arcname="data")
    raw = tarball.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(LossbenchError, match=r"truncated\.tar\.gz: truncated or corrupted tarball"):
        data.load("toy", truncated)
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(raw[:10] + bytes(b ^ 0xFF for b in raw[10:200]) + raw[200:])
    with pytest.raises(LossbenchError, match=r"corrupt\.tar\.gz: truncated or corrupted tarball"):
        data.load("toy", corrupt)


def test_missing_dataset_and_unknown_names(tmp_path):
    truth = make_dataset(tmp_path, name="miniboone", n1=10)
    (truth["folder"] / "miniboone_R.dat").unlink()
    with pytest.raises(DatasetMissingError, match="miniboone"):
        data.load("miniboone", tmp_path)
    with pytest.raises(LossbenchError, match="Unknown dataset 'irs'"):
        data.load("irs", tmp_path)
    with pytest.raises(LossbenchError, match="no such file or folder"):
        data.load("iris", tmp_path / "nowhere")


def test_names_is_the_collection():
    names = data.names()
    assert len(names) == 121 and names == sorted(names) and "miniboone" in names


def test_holdout_and_kfold4_follow_the_index_files(tmp_path):
    truth = make_dataset(tmp_path, n1=40, n_classes=2)
    ds = data.load("toy", tmp_path)
    ((train, val, test),) = ds.splits("holdout")
    np.testing.assert_array_equal(test, np.sort(truth["conx"][1]))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.sort(truth["conx"][0]))
    assert val.size == 5  # 25 % of 20, stratified: the classes alternate
    assert np.bincount(ds.y[val]).tolist() in ([3, 2], [2, 3])
    folds = ds.splits("kfold4")
    assert len(folds) == 4
    for k, (tr, va, te) in enumerate(folds):
        np.testing.assert_array_equal(te, np.sort(truth["kfold"][2 * k + 1]))
        np.testing.assert_array_equal(
            np.sort(np.concatenate([tr, va])), np.sort(truth["kfold"][2 * k])
        )
        assert not np.intersect1d(tr, va).size


def test_klambauer_protocols_follow_the_split_files(tmp_path):
    truth = make_dataset(tmp_path, n1=30, n2=10)
    test_cols, val_cols = make_splits(tmp_path, "toy", truth["y"])
    ds = data.load("toy", tmp_path, splits_source=tmp_path)
    ((tr, va, te),) = ds.splits("klambauer")
    np.testing.assert_array_equal(te, np.flatnonzero(test_cols[:, 0]))
    np.testing.assert_array_equal(va, np.flatnonzero(val_cols[:, 0]))
    np.testing.assert_array_equal(
        tr, np.flatnonzero((test_cols[:, 0] == 0) & (val_cols[:, 0] == 0))
    )
    ((str_, sva, ste),) = ds.splits("klambauer_swapped")
    np.testing.assert_array_equal(str_, te)
    np.testing.assert_array_equal(ste, tr)
    np.testing.assert_array_equal(sva, va)
    four = ds.splits("klambauer4")
    assert len(four) == 4
    np.testing.assert_array_equal(four[3][2], np.flatnonzero(test_cols[:, 3]))
    with pytest.raises(LossbenchError, match="Unknown split protocol 'klambauer5'"):
        ds.splits("klambauer5")


def test_klambauer_split_file_errors(tmp_path):
    truth = make_dataset(tmp_path, n1=30)
    make_splits(tmp_path, "toy", (truth["y"] + 1) % 2)
    with pytest.raises(LossbenchError, match=r"labels_py\.dat: label 1 in row 1 differs"):
        data.load("toy", tmp_path, splits_source=tmp_path).splits("klambauer")
    shutil.rmtree(tmp_path / "splits")
    make_splits(tmp_path, "toy", truth["y"])
    folds = tmp_path / "splits" / "toy" / "folds_py.dat"
    folds.write_text("".join(folds.read_text().splitlines(True)[:-1]))
    with pytest.raises(LossbenchError, match=r"folds_py\.dat: expected 30 rows x 4 columns"):
        data.load("toy", tmp_path, splits_source=tmp_path).splits("klambauer")


def test_split_files_are_checked_against_the_manifest(tmp_path):
    truth = make_dataset(tmp_path, name="trains", n1=10)
    make_splits(tmp_path, "trains", truth["y"])
    with pytest.raises(LossbenchError, match=r"sha256 differs from klambauer_splits_sha256\.csv"):
        data.load("trains", tmp_path, splits_source=tmp_path).splits("klambauer")


def test_tiny_datasets_get_nonempty_sets(tmp_path):
    truth = make_dataset(tmp_path, n1=10, n_classes=2)
    folder = tmp_path / "splits" / "toy"
    folder.mkdir(parents=True)
    test = np.zeros((10, 4), int)
    test[:2] = 1
    np.savetxt(folder / "folds_py.dat", test, fmt="%d", delimiter=",")
    np.savetxt(folder / "validation_folds_py.dat", np.zeros((10, 4), int), fmt="%d", delimiter=",")
    np.savetxt(folder / "labels_py.dat", truth["y"], fmt="%d")
    ds = data.load("toy", tmp_path, splits_source=tmp_path)
    for protocol in data.PROTOCOLS:
        for split in ds.splits(protocol):
            assert all(part.size > 0 for part in split), protocol
            joined = np.concatenate(split)
            assert np.unique(joined).size == joined.size and joined.max() < 10


def _serve(folder: Path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_over_loopback_records_sha256(tmp_path):
    truth = make_dataset(tmp_path, n1=20)
    serve = tmp_path / "www"
    serve.mkdir()
    with tarfile.open(serve / "data.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "data", arcname="data")
    server = _serve(serve)
    try:
        url = f"http://127.0.0.1:{server.server_port}/data.tar.gz"
        ds = data.load("toy", url)
        with pytest.raises(LossbenchError, match="cannot download"):
            data.load("toy", f"http://127.0.0.1:{server.server_port}/absent.tar.gz")
    finally:
        server.shutdown()
    np.testing.assert_array_equal(ds.y, truth["y"][:20])
    (sidecar,) = (tmp_path / "cache" / "downloads").glob("*/data.tar.gz.sha256")
    expected = hashlib.sha256((serve / "data.tar.gz").read_bytes()).hexdigest()
    assert sidecar.read_text().split()[0] == expected


def test_source_precedence(monkeypatch):
    monkeypatch.setenv("LOSSBENCH_UCI121", "/from/env")
    assert _sources.choose("/from/flag", "LOSSBENCH_UCI121", "url") == "/from/flag"
    assert _sources.choose(None, "LOSSBENCH_UCI121", "url") == "/from/env"
    monkeypatch.delenv("LOSSBENCH_UCI121")
    assert _sources.choose(None, "LOSSBENCH_UCI121", "url") == "url"


def test_split_files_from_a_base_url_over_loopback(tmp_path):
    truth = make_dataset(tmp_path, n1=20)
    test_cols, _ = make_splits(tmp_path, "toy", truth["y"])
    server = _serve(tmp_path / "splits")  # serves <base>/toy/folds_py.dat, as raw GitHub does
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        ds = data.load("toy", tmp_path, splits_source=base)
        ((_, _, test),) = ds.splits("klambauer")
    finally:
        server.shutdown()
    np.testing.assert_array_equal(test, np.flatnonzero(test_cols[:, 0]))
