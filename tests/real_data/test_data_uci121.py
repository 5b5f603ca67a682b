"""The real UCI-121 collection: shapes vs metadata, labels vs labels_py, splits vs their files."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.data as data
from bench.errors import DatasetMissingError

pytestmark = pytest.mark.real_data

MANIFEST = Path(__file__).resolve().parents[2].parent / "shared" / "uci121" / "datasets.csv"


@pytest.fixture(scope="module")
def expected() -> dict[str, dict]:
    if not MANIFEST.is_file():
        pytest.skip(f"{MANIFEST} not found")
    with open(MANIFEST, newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def split_files(splits_source) -> dict[str, dict[str, np.ndarray]]:
    """The raw Klambauer files, read independently of bench.data (numpy, straight from the tar)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    if os.path.isdir(splits_source):
        pytest.skip("independent split reader only handles the tarball")
    with tarfile.open(splits_source) as archive:
        for member in archive:
            if member.isfile():
                _, name, fname = member.name.split("/")
                handle = io.BytesIO(archive.extractfile(member).read())
                frame = pd.read_csv(handle, header=None)
                out.setdefault(name, {})[fname] = frame.to_numpy(np.int64)
    return out


@pytest.fixture(scope="module")
def loaded(uci_source, splits_source) -> dict[str, data.Dataset]:
    out = {}
    for name in data.names():
        with contextlib.suppress(DatasetMissingError):
            out[name] = data.load(name, uci_source, splits_source)
    return out


def test_every_available_dataset_matches_its_metadata(loaded, expected):
    missing = {n for n, row in expected.items() if row["status"] == "missing"}
    assert set(loaded) == set(expected) - missing
    assert missing == {"miniboone"}
    for name, ds in loaded.items():
        row = expected[name]
        assert ds.X.shape == (int(row["n_samples"]), int(row["n_features"])), name
        assert ds.n_classes == int(row["n_classes"]), name
        assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
        assert ds.y.min() >= 0 and ds.y.max() < ds.n_classes
        assert np.isfinite(ds.X).all(), name


def test_labels_equal_labels_py(loaded, split_files):
    for name, ds in loaded.items():
        np.testing.assert_array_equal(ds.y, split_files[name]["labels_py.dat"][:, 0], err_msg=name)


def test_klambauer_sets_equal_the_split_files(loaded, split_files):
    for name, ds in loaded.items():
        folds = split_files[name]["folds_py.dat"]
        val = split_files[name]["validation_folds_py.dat"]
        for col, (tr, va, te) in enumerate(ds.splits("klambauer4")):
            np.testing.assert_array_equal(te, np.flatnonzero(folds[:, col] == 1), err_msg=name)
            np.testing.assert_array_equal(va, np.flatnonzero(val[:, col] == 1), err_msg=name)
            assert tr.size + va.size + te.size == ds.n_samples
        (first,) = ds.splits("klambauer")
        (swapped,) = ds.splits("klambauer_swapped")
        np.testing.assert_array_equal(swapped[0], first[2])
        np.testing.assert_array_equal(swapped[2], first[0])


def test_kfold4_and_holdout_tests_equal_the_index_lines(loaded, uci_source, expected):
    if os.path.isdir(uci_source):
        pytest.skip("independent index reader only handles the tarball")
    lines: dict[str, dict[str, list[np.ndarray]]] = {}
    with tarfile.open(uci_source) as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) != 3:
                continue
            _, name, fname = parts
            if fname in ("conxuntos.dat", "conxuntos_kfold.dat") and name in loaded:
                text = archive.extractfile(member).read().decode()
                lines.setdefault(name, {})[fname] = [
                    np.array(line.split(), dtype=np.int64) for line in text.splitlines()
                ]
    for name, ds in loaded.items():
        kfold = lines[name]["conxuntos_kfold.dat"]
        for k, (tr, va, te) in enumerate(ds.splits("kfold4")):
            np.testing.assert_array_equal(te, np.sort(kfold[2 * k + 1]), err_msg=name)
            np.testing.assert_array_equal(np.union1d(tr, va), np.sort(kfold[2 * k]))
        ((tr, va, te),) = ds.splits("holdout")
        conx = lines[name]["conxuntos.dat"]
        np.testing.assert_array_equal(te, np.sort(conx[1]), err_msg=name)
        assert te.size == int(expected[name]["n_val"])
        np.testing.assert_array_equal(np.union1d(tr, va), np.sort(conx[0]))


def test_every_protocol_gives_disjoint_nonempty_in_range_sets(loaded):
    counts = {"klambauer": 1, "klambauer4": 4, "klambauer_swapped": 1, "holdout": 1, "kfold4": 4}
    assert set(counts) == set(data.PROTOCOLS)
    for name, ds in loaded.items():
        for protocol, n_splits in counts.items():
            splits = ds.splits(protocol)
            assert len(splits) == n_splits
            for split in splits:
                assert all(part.size > 0 and part.dtype == np.int64 for part in split), name
                joined = np.concatenate(split)
                assert np.unique(joined).size == joined.size, (name, protocol)
                assert joined.min() >= 0 and joined.max() < ds.n_samples


def test_same_call_twice_is_identical(uci_source, splits_source):
    for name in ("trains", "adult", "iris"):
        a = data.load(name, uci_source, splits_source)
        b = data.load(name, uci_source, splits_source)
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
        for protocol in data.PROTOCOLS:
            for sa, sb in zip(a.splits(protocol), b.splits(protocol), strict=True):
                for x, z in zip(sa, sb, strict=True):
                    np.testing.assert_array_equal(x, z)
