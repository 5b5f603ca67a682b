"""The open-set noisy dataset of the GCE paper's Table 2 (CIFAR-10 + CIFAR-100 images), built
from generated archives in the exact CIFAR python format (bench.data.images.synth)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import bench.data as data
from bench.data.images import open_set
from bench.data.images.synth import write_cifar_archive
from bench.errors import DatasetMissingError, LossbenchError

ENVS = ("LOSSBENCH_CIFAR10", "LOSSBENCH_CIFAR100")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    for env in ENVS:
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar")
    return (write_cifar_archive(folder / "cifar-10-python.tar.gz", "cifar10", 120, seed=0),
            write_cifar_archive(folder / "cifar-100-python.tar.gz", "cifar100", 60, seed=1))


def _rows(X: np.ndarray) -> dict[bytes, int]:
    return {bytes(np.asarray(x).tobytes()): i for i, x in enumerate(X)}


def test_open_set_replaces_a_share_with_random_labels():
    n, c = 4000, 10
    X_main = np.arange(n, dtype=np.float32)[:, None, None].repeat(2, 1).repeat(2, 2)
    X_other = -1.0 - np.arange(2 * n, dtype=np.float64)[:, None, None].repeat(2, 1).repeat(2, 2)
    y = np.random.default_rng(0).permutation(np.arange(n) % c).astype(np.int64)
    X, y_out, is_out = open_set(X_main, y, X_other, 0.4, c, seed=0)
    assert is_out.sum() == 1600 and X.dtype == np.float32 and X.shape == X_main.shape
    assert np.array_equal(X[~is_out], X_main[~is_out]) and np.array_equal(y_out[~is_out],
                                                                         y[~is_out])
    ids = -1 - X[is_out, 0, 0].astype(np.int64)  # which X_other rows came in
    assert np.all(ids >= 0) and np.unique(ids).size == 1600
    assert np.array_equal(X[is_out], X_other[ids].astype(np.float32))
    counts = np.bincount(y_out[is_out], minlength=c)
    expected = 1600 / c
    assert ((counts - expected) ** 2 / expected).sum() < 33.7  # chi2(9) 99.99 % quantile
    assert np.array_equal(X_main[:, 0, 0], np.arange(n))  # input untouched
    X2, y2, o2 = open_set(X_main, y, X_other, 0.4, c, seed=0)
    assert np.array_equal(X2, X) and np.array_equal(y2, y_out) and np.array_equal(o2, is_out)


Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize("call,param", [
    (lambda: open_set(np.zeros((4, 2)), Y, np.zeros((1, 2)), 0.5, 3, 0), "X_other.*needs 2"),
    (lambda: open_set(np.zeros((4, 2)), Y, np.zeros((9, 3)), 0.5, 3, 0), "X_other.*shape"),
    (lambda: open_set(np.zeros((5, 2)), Y, np.zeros((9, 2)), 0.5, 3, 0), "X_main"),
    (lambda: open_set(np.zeros((4, 2)), Y, np.zeros((9, 2)), 1.5, 3, 0), "rate"),
    (lambda: open_set(np.zeros((4, 2)), Y, np.zeros((9, 2)), 0.5, 2, 0), "y_main"),
    (lambda: open_set(np.zeros((4, 2)), Y, np.zeros((9, 2)), 0.5, 3, -1), "seed"),
    (lambda: open_set(np.zeros((4, 2)), Y, np.zeros((3, 2)), 1.0, 3, 0,
                      keep_class_counts=True), "X_other.*needs 4"),
])
def test_open_set_bad_input_names_the_parameter(call, param):
    with pytest.raises(LossbenchError, match=param):
        call()


def test_open_set_keep_class_counts_draws_per_class_and_labels_by_slot():
    rng = np.random.default_rng(0)
    n, c, n_other, n_fine = 20_000, 10, 30_000, 100
    y = rng.integers(0, c, n)
    fine = rng.integers(0, n_fine, n_other)  # the outside images' own classes
    X_main = np.arange(n)[:, None]
    X_other = -1 - np.arange(n_other)[:, None]
    X, y_out, out = open_set(X_main, y, X_other, 0.4, c, seed=3, keep_class_counts=True)
    counts = np.bincount(y, minlength=c)
    assert np.array_equal(np.bincount(y[out], minlength=c), np.round(0.4 * counts))
    assert np.array_equal(y_out, y)  # every class keeps its size and its labels
    source = -1 - X[out, 0]
    assert np.unique(source).size == out.sum() and np.array_equal(X[~out], X_main[~out])
    # the label an outside image gets does not depend on what it shows
    table = np.zeros((n_fine, c))
    np.add.at(table, (fine[source], y_out[out]), 1)
    assert stats.chi2_contingency(table)[1] > 1e-3
    again = open_set(X_main, y, X_other, 0.4, c, seed=3, keep_class_counts=True)
    assert np.array_equal(again[0], X) and np.array_equal(again[2], out)


def test_cifar10_open_set_replaces_40_percent_of_train_with_cifar100_train(archives):
    c10, c100 = (data.get_dataset(n, p) for n, p in zip(("cifar10", "cifar100"), archives,
                                                           strict=True))
    ds = data.get_dataset("cifar10_open_set", archives[0], open_source=archives[1])
    assert ds.family == "image" and ds.n_classes == 10 and ds.class_names == c10.class_names
    assert ds.X.shape == c10.X.shape and ds.X.dtype == np.uint8
    out = np.asarray(ds.meta["is_outlier"])
    test = np.asarray(c10.test_idx)
    train = np.setdiff1d(np.arange(len(c10.y)), test)
    # the test set: CIFAR-10's rows and clean labels, byte for byte, never replaced
    np.testing.assert_array_equal(ds.test_idx, test)
    np.testing.assert_array_equal(ds.X[test], c10.X[test])
    np.testing.assert_array_equal(ds.y[test], c10.y[test])
    assert not out[test].any()
    # 40 % of each class's training rows replaced, labels and class sizes kept
    per_class = np.bincount(c10.y[train], minlength=10)
    np.testing.assert_array_equal(np.bincount(ds.y[out], minlength=10),
                                  np.round(0.4 * per_class))
    assert abs(out[train].mean() - 0.4) < 0.01 and ds.meta["n_outliers"] == out.sum()
    np.testing.assert_array_equal(ds.y, c10.y)
    np.testing.assert_array_equal(ds.X[~out], c10.X[~out])
    # each replaced row is a distinct CIFAR-100 training image (never a test image)
    c100_train = np.setdiff1d(np.arange(len(c100.y)), c100.test_idx)
    from_train = _rows(c100.X[c100_train])
    found = [from_train.get(bytes(x.tobytes())) for x in ds.X[out]]
    assert None not in found and len(set(found)) == out.sum()
    # the validation slice comes from the noisy training rows; test stays clean
    fit, val, test_split = ds.splits("official_val10")[0]
    np.testing.assert_array_equal(test_split, test)
    assert out[val].any() and abs(val.size - 0.1 * train.size) <= 1
    assert ds.meta["open_set_source"] == "cifar100" and ds.meta["open_rate"] == 0.4


def test_cifar10_open_set_is_deterministic_by_seed_and_cached(archives, monkeypatch):
    first = data.get_dataset("cifar10_open_set", archives[0], open_source=archives[1])
    assert isinstance(first.X, np.memmap)  # built once, then memory-mapped from the cache
    monkeypatch.setenv("LOSSBENCH_CIFAR10", str(archives[0]))
    monkeypatch.setenv("LOSSBENCH_CIFAR100", str(archives[1]))
    again = data.get_dataset("cifar10_open_set")  # both sources from the env variables
    np.testing.assert_array_equal(again.X, first.X)
    np.testing.assert_array_equal(again.meta["is_outlier"], first.meta["is_outlier"])
    other = data.get_dataset("cifar10_open_set", open_seed=1)
    assert not np.array_equal(other.meta["is_outlier"], first.meta["is_outlier"])
    half = data.get_dataset("cifar10_open_set", open_rate=0.2)
    assert half.meta["n_outliers"] < first.meta["n_outliers"]


def test_cifar10_open_set_names_both_sources(archives, monkeypatch):
    assert data.dataset_source_envs("cifar10_open_set") == ENVS
    assert data.dataset_source_env("cifar10_open_set") == "LOSSBENCH_CIFAR10"
    assert data.dataset_source_envs("cifar10") == ("LOSSBENCH_CIFAR10",)
    assert data.dataset_source_envs("digits") == ()
    with pytest.raises(DatasetMissingError, match="needs cifar100 images too: set "
                                                  "LOSSBENCH_CIFAR100"):
        data.get_dataset("cifar10_open_set", archives[0])
    with pytest.raises(DatasetMissingError, match="LOSSBENCH_CIFAR10"):
        data.get_dataset("cifar10_open_set", open_source=archives[1])
    for option, value in (("open_rate", 1.0), ("open_rate", "0.4"), ("open_seed", -1)):
        with pytest.raises(LossbenchError, match=option):
            data.get_dataset("cifar10_open_set", archives[0], open_source=archives[1],
                             **{option: value})
