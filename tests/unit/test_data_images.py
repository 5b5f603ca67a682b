"""bench.data.images on small files written in the exact published formats.

CIFAR: pickled dicts with the real byte-string keys in a .tar.gz with the real member names;
CINIC: a PNG tree; MNIST: gzipped IDX files with real headers; Tiny-ImageNet: the zip layout
with val_annotations.txt; ImageNet: the train/val class-folder tree. Each round-trips through
the code path the real archives take.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.data as data
from bench.data.images import _digits
from bench.data.images._source import ImageSource
from bench.errors import DatasetMissingError, LossbenchError

_OUTER_CACHE = os.environ.get("LOSSBENCH_CACHE")
IMAGE_ENVS = ("LOSSBENCH_CIFAR10", "LOSSBENCH_CIFAR100", "LOSSBENCH_CINIC10", "LOSSBENCH_MNIST",
              "LOSSBENCH_FASHION_MNIST", "LOSSBENCH_IMAGENET", "LOSSBENCH_TINY_IMAGENET")
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    for env in IMAGE_ENVS:
        monkeypatch.delenv(env, raising=False)


def _str2(b: bytes) -> bytes:  # a Python 2 str: SHORT_BINSTRING or BINSTRING
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b


def _int2(v: int) -> bytes:
    return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)


def _opcodes2(obj) -> bytes:
    if obj is None:
        return b"N"
    if isinstance(obj, bytes):
        return _str2(obj)
    if isinstance(obj, int):
        return _int2(obj)
    if isinstance(obj, list):
        return b"](" + b"".join(_opcodes2(v) for v in obj) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(_opcodes2(k) + _opcodes2(v) for k, v in obj.items()) + b"u"
    assert isinstance(obj, np.ndarray) and obj.dtype == np.uint8, type(obj)
    dtype = (b"cnumpy\ndtype\n" + _str2(b"u1") + _int2(0) + _int2(1) + b"\x87R(" + _int2(3)
             + _str2(b"|") + b"NNN" + _int2(-1) + _int2(-1) + _int2(0) + b"tb")
    shape = b"(" + b"".join(_int2(d) for d in obj.shape) + b"t"
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _int2(0) + b"\x85"
            + _str2(b"b") + b"\x87R(" + _int2(1) + shape + dtype + b"\x89" + _str2(obj.tobytes())
            + b"tb")


def _pickle(obj) -> bytes:
    """``obj`` pickled as CIFAR's Python 2 cPickle (protocol 2) wrote it: str keys and values
    as BINSTRING, the array through numpy.core.multiarray._reconstruct."""
    return b"\x80\x02" + _opcodes2(obj) + b"."


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


# ---------------------------------------------------------------- CIFAR


def write_cifar10(folder: Path, n: int = 3, seed: int = 0, **overrides) -> tuple[Path, dict]:
    """cifar-10-python.tar.gz: data_batch_1..5 (n rows each) + test_batch + batches.meta."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(6 * n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=6 * n)
    members = {}
    for b, fname in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        rows = slice(b * n, (b + 1) * n)
        batch = {b"batch_label": f"batch {fname}".encode(),
                 b"labels": [int(v) for v in y[rows]],
                 b"data": X[rows].reshape(n, 3072),
                 b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
        batch.update(overrides.get(fname, {}))
        members[f"cifar-10-batches-py/{fname}"] = _pickle(batch)
    members["cifar-10-batches-py/batches.meta"] = _pickle(
        {b"num_cases_per_batch": n, b"label_names": [s.encode() for s in CIFAR10_NAMES],
         b"num_vis": 3072})
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    path = _tar(folder / "cifar-10-python.tar.gz", members)
    return path, {"X": X, "y": y, "members": members}


def test_cifar10_round_trips_pixels_labels_and_test_rows(tmp_path):
    path, truth = write_cifar10(tmp_path)
    ds = data.get_dataset("cifar10", path)
    assert ds.family == "image" and ds.X.dtype == np.uint8 and ds.X.shape == (18, 3, 32, 32)
    np.testing.assert_array_equal(ds.X, truth["X"])
    np.testing.assert_array_equal(ds.y, truth["y"])
    assert ds.class_names == CIFAR10_NAMES
    np.testing.assert_array_equal(ds.test_idx, np.arange(15, 18))
    # the documented layout: byte 1024*c + 32*h + w of a row is channel c (R, G, B), pixel h, w
    raw = pickle.loads(truth["members"]["cifar-10-batches-py/data_batch_2"], encoding="bytes")
    assert ds.X[3, 1, 4, 7] == raw[b"data"][0, 1024 + 32 * 4 + 7]
    fit, val, test = ds.splits("official")[0]
    np.testing.assert_array_equal(test, np.arange(15, 18))
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(15))


def test_cifar_second_load_is_cached_and_memory_mapped(tmp_path, monkeypatch):
    path, truth = write_cifar10(tmp_path)
    first = data.get_dataset("cifar10", path)
    assert isinstance(first.X, np.memmap)
    cache = Path(os.environ["LOSSBENCH_CACHE"]) / "images"
    assert sorted(p.name for p in next(cache.iterdir()).iterdir()) == [
        "X.npy", "meta.json", "test_idx.npy", "y.npy"]

    def no_parse(self, want):
        raise AssertionError("the cached arrays were parsed again")

    monkeypatch.setattr(ImageSource, "members", no_parse)
    second = data.get_dataset("cifar10", str(path))
    assert isinstance(second.X, np.memmap)
    np.testing.assert_array_equal(second.X, truth["X"])
    np.testing.assert_array_equal(second.y, first.y)
    assert second.class_names == first.class_names


def test_cifar10_extracted_folder_and_env_variable(tmp_path, monkeypatch):
    path, truth = write_cifar10(tmp_path)
    with tarfile.open(path) as archive:
        archive.extractall(tmp_path / "x", filter="data")
    monkeypatch.setenv("LOSSBENCH_CIFAR10", str(tmp_path / "x"))  # parent of the batches folder
    ds = data.get_dataset("cifar10")
    np.testing.assert_array_equal(ds.X, truth["X"])
    np.testing.assert_array_equal(ds.y, truth["y"])


def test_cifar100_fine_coarse_and_super_class_map(tmp_path):
    rng = np.random.default_rng(1)
    super_class = rng.permutation(100) % 20
    fine = np.concatenate([rng.permutation(100), rng.integers(0, 100, 7)])
    X = rng.integers(0, 256, size=(107, 3, 32, 32), dtype=np.uint8)
    fine_names = [f"fine{i}" for i in range(100)]
    coarse_names = [f"coarse{i}" for i in range(20)]

    def part(rows, label):
        return _pickle({b"filenames": [b"f.png"] * len(rows), b"batch_label": label,
                        b"fine_labels": fine[rows].tolist(),
                        b"coarse_labels": super_class[fine[rows]].tolist(),
                        b"data": X[rows].reshape(len(rows), 3072)})

    path = _tar(tmp_path / "cifar-100-python.tar.gz", {
        "cifar-100-python/meta": _pickle({b"fine_label_names": [s.encode() for s in fine_names],
                                          b"coarse_label_names": [s.encode()
                                                                  for s in coarse_names]}),
        "cifar-100-python/test": part(np.arange(100, 107), b"testing batch 1 of 1"),
        "cifar-100-python/train": part(np.arange(100), b"training batch 1 of 1"),
    })
    ds = data.get_dataset("cifar100", path)
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, fine)
    assert ds.n_classes == 100 and ds.class_names == fine_names
    np.testing.assert_array_equal(ds.test_idx, np.arange(100, 107))
    np.testing.assert_array_equal(ds.meta["coarse_y"], super_class[fine])
    np.testing.assert_array_equal(ds.meta["super_class"], super_class)
    assert ds.meta["coarse_names"] == coarse_names


def test_cifar_bad_archives_name_the_users_file(tmp_path):
    path, _ = write_cifar10(tmp_path)
    cache = os.environ["LOSSBENCH_CACHE"]
    truncated = tmp_path / "short" / "cifar-10-python.tar.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LossbenchError, match="truncated or corrupted archive") as err:
        data.get_dataset("cifar10", truncated)
    assert str(truncated) in str(err.value) and cache not in str(err.value)
    assert "\n" not in str(err.value)

    (tmp_path / "a").mkdir()
    no_labels, _ = write_cifar10(tmp_path / "a", data_batch_3={b"labels": None})
    with pytest.raises(LossbenchError, match="data_batch_3: b'labels' must be 3 integer"):
        data.get_dataset("cifar10", no_labels)
    (tmp_path / "b").mkdir()
    out_of_range, _ = write_cifar10(tmp_path / "b", test_batch={b"labels": [0, 10, 1]})
    with pytest.raises(LossbenchError, match=r"test_batch: b'labels' out of range: 0\.\.10"):
        data.get_dataset("cifar10", out_of_range)


def test_cifar_missing_key_and_member(tmp_path):
    path, truth = write_cifar10(tmp_path)
    members = dict(truth["members"])
    members["cifar-10-batches-py/data_batch_5"] = _pickle({b"labels": [0, 1, 2]})
    (tmp_path / "k").mkdir()
    bad = _tar(tmp_path / "k" / "cifar-10-python.tar.gz", members)
    with pytest.raises(LossbenchError, match=f"{bad}: cifar-10-batches-py/data_batch_5: "
                                             "missing key b'data'"):
        data.get_dataset("cifar10", bad)
    del members["cifar-10-batches-py/test_batch"]
    (tmp_path / "m").mkdir()
    bad = _tar(tmp_path / "m" / "cifar-10-python.tar.gz", members)
    with pytest.raises(LossbenchError, match="no cifar-10-batches-py/test_batch"):
        data.get_dataset("cifar10", bad)


def test_cifar_pickle_may_not_reference_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    _, truth = write_cifar10(tmp_path)
    members = dict(truth["members"])
    members["cifar-10-batches-py/data_batch_1"] = pickle.dumps({b"data": Payload()}, protocol=2)
    (tmp_path / "p").mkdir()
    bad = _tar(tmp_path / "p" / "cifar-10-python.tar.gz", members)
    with pytest.raises(LossbenchError, match="refusing to load posix.getcwd"):
        data.get_dataset("cifar10", bad)


def test_missing_source_says_how_to_configure(monkeypatch):
    with pytest.raises(DatasetMissingError) as err:
        data.get_dataset("cifar100")
    assert str(err.value) == (
        "dataset 'cifar100' is not configured: set --source or LOSSBENCH_CIFAR100 "
        "(expected cifar-100-python.tar.gz or its extracted folder)")
    with pytest.raises(LossbenchError, match="no such file or folder"):
        data.get_dataset("mnist", "/nonexistent/mnist")


def test_url_source_checks_the_published_md5(tmp_path):
    path, truth = write_cifar10(tmp_path)
    with pytest.raises(LossbenchError, match="differs from the published "
                                             "c58f30108f718f92721af3b95e74349a"):
        data.get_dataset("cifar10", path.as_uri())  # official name, not the official bytes
    assert not list((Path(os.environ["LOSSBENCH_CACHE"]) / "downloads").rglob("*.tar.gz"))
    renamed = path.rename(tmp_path / "my-cifar10.tar.gz")  # no published md5 to check
    ds = data.get_dataset("cifar10", renamed.as_uri())
    np.testing.assert_array_equal(ds.X, truth["X"])
    write_mnist(tmp_path / "mirror")  # a base URL: the four files are fetched one by one
    with pytest.raises(LossbenchError, match="train-images-idx3-ubyte.gz: md5 [0-9a-f]+ differs "
                                             "from the published f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        data.get_dataset("mnist", (tmp_path / "mirror").as_uri() + "/")


# ---------------------------------------------------------------- MNIST (IDX)


def _idx(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(folder: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    truth = {"train": (rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)),
             "test": (rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 10, 3))}
    folder.mkdir(parents=True, exist_ok=True)
    for part, stem in (("train", "train"), ("test", "t10k")):
        (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(_idx(2051, truth[part][0]))
        (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(_idx(2049, truth[part][1]))
    return truth


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_idx_round_trip(tmp_path, name):
    truth = write_mnist(tmp_path / "raw")
    ds = data.get_dataset(name, tmp_path / "raw")
    assert ds.X.shape == (8, 1, 28, 28) and ds.X.dtype == np.uint8
    np.testing.assert_array_equal(ds.X[:5, 0], truth["train"][0])
    np.testing.assert_array_equal(ds.X[5:, 0], truth["test"][0])
    np.testing.assert_array_equal(ds.y, np.concatenate([truth["train"][1], truth["test"][1]]))
    np.testing.assert_array_equal(ds.test_idx, [5, 6, 7])
    assert ds.class_names[9] == ("9" if name == "mnist" else "Ankle boot")


def test_mnist_bad_magic_truncation_and_labels(tmp_path):
    write_mnist(tmp_path / "raw")
    labels = tmp_path / "raw" / "t10k-labels-idx1-ubyte.gz"
    good = labels.read_bytes()
    labels.write_bytes(_idx(2051, np.zeros(3)))
    with pytest.raises(LossbenchError, match=f"{labels}: IDX magic number 2051; expected 2049"):
        data.get_dataset("mnist", tmp_path / "raw")
    labels.write_bytes(good[:-8])
    with pytest.raises(LossbenchError, match=f"{labels}: truncated or corrupted gzip"):
        data.get_dataset("mnist", tmp_path / "raw")
    labels.write_bytes(_idx(2049, np.array([1, 2, 10])))
    with pytest.raises(LossbenchError, match=f"{labels}: label 10 out of range 0..9"):
        data.get_dataset("mnist", tmp_path / "raw")
    raw = gzip.decompress(good)
    labels.write_bytes(gzip.compress(raw[:-1]))  # header says 3 labels, 2 follow
    with pytest.raises(LossbenchError, match="2 data bytes; the header 3 says 3"):
        data.get_dataset("mnist", tmp_path / "raw")


# ---------------------------------------------------------------- CINIC-10, Tiny-ImageNet


def _png(array_chw: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array_chw.transpose(1, 2, 0)).save(out, format="PNG")
    return out.getvalue()


def _jpeg(array_chw: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array_chw.transpose(1, 2, 0)).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _decoded(payload: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB")).transpose(2, 0, 1)


def test_cinic10_png_tree_train_valid_test(tmp_path):
    rng = np.random.default_rng(2)
    expected = []  # rows in the documented order: part, class, file name
    for part in ("train", "valid", "test"):
        for c, cls in enumerate(CIFAR10_NAMES):
            folder = tmp_path / "cinic" / part / cls
            folder.mkdir(parents=True)
            for fname in (["n02_b.png", "cifar10-train-7.png"] if c == 3 else ["x.png"]):
                image = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
                (folder / fname).write_bytes(_png(image))
                expected.append((part, c, fname, image))
    order = {"train": 0, "valid": 1, "test": 2}
    expected.sort(key=lambda r: (order[r[0]], r[1], r[2]))
    ds = data.get_dataset("cinic10", tmp_path / "cinic")
    assert ds.X.shape == (33, 3, 32, 32) and ds.class_names == CIFAR10_NAMES
    np.testing.assert_array_equal(ds.X, np.stack([r[3] for r in expected]))
    np.testing.assert_array_equal(ds.y, [r[1] for r in expected])
    np.testing.assert_array_equal(ds.test_idx, np.arange(22, 33))
    np.testing.assert_array_equal(ds.meta["valid_idx"], np.arange(11, 22))
    _, _, test = ds.splits("official")[0]
    np.testing.assert_array_equal(test, np.arange(22, 33))  # train + valid are the 180k


def test_cinic10_wrong_image_size_names_the_file(tmp_path):
    for part in ("train", "valid", "test"):
        for cls in CIFAR10_NAMES:
            (tmp_path / part / cls).mkdir(parents=True)
            (tmp_path / part / cls / "a.png").write_bytes(_png(np.zeros((3, 32, 32), np.uint8)))
    bad = tmp_path / "valid" / "cat" / "b.png"
    bad.write_bytes(_png(np.zeros((3, 32, 30), np.uint8)))
    with pytest.raises(LossbenchError, match=f"{bad}: image is 32x30; expected 32x32"):
        data.get_dataset("cinic10", tmp_path)


def write_tiny(path: Path, seed: int = 3) -> dict:
    """tiny-imagenet-200.zip: wnids.txt (unsorted), words.txt, train/<wnid>/images, val/."""
    rng = np.random.default_rng(seed)
    wnids = ["n03", "n01", "n02"]
    members: dict[str, bytes] = {
        "tiny-imagenet-200/wnids.txt": "\n".join(wnids).encode() + b"\n",
        "tiny-imagenet-200/words.txt": b"n01\tgoldfish, Carassius auratus\nn02\ttabby\n"
                                       b"n03\tbus, autobus\nn04\tunused\n",
    }
    train, val = [], []
    for wnid in wnids:
        members[f"tiny-imagenet-200/train/{wnid}/{wnid}_boxes.txt"] = b"x\t0\t0\t1\t1\n"
        for k in range(2):
            payload = _jpeg(rng.integers(0, 256, (3, 64, 64), dtype=np.uint8))
            members[f"tiny-imagenet-200/train/{wnid}/images/{wnid}_{k}.JPEG"] = payload
            train.append((sorted(wnids).index(wnid), f"{wnid}_{k}.JPEG", payload))
    lines = []
    for k, wnid in enumerate(["n02", "n03", "n01", "n02"]):
        payload = _jpeg(rng.integers(0, 256, (3, 64, 64), dtype=np.uint8))
        members[f"tiny-imagenet-200/val/images/val_{k}.JPEG"] = payload
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
        val.append((sorted(wnids).index(wnid), payload))
    members["tiny-imagenet-200/val/val_annotations.txt"] = ("\n".join(lines) + "\n").encode()
    members["tiny-imagenet-200/test/images/test_0.JPEG"] = _jpeg(np.zeros((3, 64, 64), np.uint8))
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in reversed(members.items()):  # order must not matter
            archive.writestr(name, payload)
    train.sort(key=lambda r: r[:2])
    return {"train": train, "val": val}


def test_tiny_imagenet_zip_round_trip(tmp_path):
    truth = write_tiny(tmp_path / "tiny-imagenet-200.zip")
    ds = data.get_dataset("tiny_imagenet", tmp_path / "tiny-imagenet-200.zip")
    assert ds.X.shape == (10, 3, 64, 64) and ds.n_classes == 3
    assert ds.class_names == ["goldfish", "tabby", "bus"] and ds.meta["wnids"] == [
        "n01", "n02", "n03"]
    rows = [r[2] for r in truth["train"]] + [r[1] for r in truth["val"]]
    np.testing.assert_array_equal(ds.X, np.stack([_decoded(p) for p in rows]))
    np.testing.assert_array_equal(ds.y, [r[0] for r in truth["train"]] + [1, 2, 0, 1])
    np.testing.assert_array_equal(ds.test_idx, np.arange(6, 10))


def test_tiny_imagenet_unknown_val_wnid(tmp_path):
    write_tiny(tmp_path / "t.zip")
    with zipfile.ZipFile(tmp_path / "t.zip") as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members["tiny-imagenet-200/val/val_annotations.txt"] += b"val_9.JPEG\tn99\t0\t0\t1\t1\n"
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    with pytest.raises(LossbenchError, match=r"bad.zip: tiny-imagenet-200/val/val_annotations"
                                             r"\.txt: line 5: wnid 'n99' is not in wnids.txt"):
        data.get_dataset("tiny_imagenet", tmp_path / "bad.zip")


# ---------------------------------------------------------------- ImageNet file list


def test_imagenet_file_list_reads_on_demand(tmp_path):
    rng = np.random.default_rng(4)
    written = {}
    for part, wnid, fname in [("train", "n02", "b.JPEG"), ("train", "n01", "z.JPEG"),
                              ("train", "n01", "a.JPEG"), ("val", "n02", "v1.JPEG"),
                              ("val", "n01", "v2.JPEG")]:
        (tmp_path / part / wnid).mkdir(parents=True, exist_ok=True)
        payload = _jpeg(rng.integers(0, 256, (3, 20 + len(written), 30), dtype=np.uint8))
        (tmp_path / part / wnid / fname).write_bytes(payload)
        written[f"{part}/{wnid}/{fname}"] = payload
    ds = data.get_dataset("imagenet", tmp_path)
    assert list(ds.X) == ["train/n01/a.JPEG", "train/n01/z.JPEG", "train/n02/b.JPEG",
                          "val/n01/v2.JPEG", "val/n02/v1.JPEG"]
    np.testing.assert_array_equal(ds.y, [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(ds.test_idx, [3, 4])
    assert ds.class_names == ["n01", "n02"] and ds.input_shape == (3, 224, 224)
    assert len(ds) == 5
    image, label = ds[4]
    np.testing.assert_array_equal(image, _decoded(written["val/n02/v1.JPEG"]))
    assert label == 1 and image.shape == (3, 23, 30)
    (tmp_path / "val" / "n07").mkdir()
    with pytest.raises(LossbenchError, match="n07: class folder not in train/"):
        data.get_dataset("imagenet", tmp_path)


# ---------------------------------------------------------------- digit sets


def test_digits_pixels_are_sklearn_images_row_major():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = data.get_dataset("digits")
    assert ds.X.shape == (1797, 1, 8, 8) and ds.X.dtype == np.uint8
    assert ds.X.max() == 255 and ds.class_names == [str(d) for d in range(10)]
    # pixel (r, c) is feature 8 r + c of the flat rows, scaled by 255/16 and rounded
    np.testing.assert_array_equal(ds.X[:, 0, 2, 5], np.round(bunch.data[:, 8 * 2 + 5] * 255 / 16))
    np.testing.assert_array_equal(ds.X[:, 0], np.round(bunch.images * 255 / 16))
    np.testing.assert_array_equal(ds.y, bunch.target)
    fit, val, test = ds.splits("random")[0]
    assert (fit.size, val.size, test.size) == (1150, 288, 359)
    with pytest.raises(LossbenchError, match="ships with scikit-learn"):
        data.get_dataset("digits", "/some/source")
    with pytest.raises(LossbenchError, match="takes the options val_fraction, test_fraction"):
        data.get_dataset("digits", colour=True)


@pytest.fixture(scope="module")
def uci_digit_sets(uci_source, tmp_path_factory) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOSSBENCH_CACHE", _OUTER_CACHE or str(tmp_path_factory.mktemp("cache")))
        return {name: data.get_dataset(name, uci_source)
                for name in ("semeion_img", "optical_img")}


@pytest.mark.real_data
def test_semeion_img_binary_16x16_read_row_major(uci_digit_sets):
    from sklearn.datasets import load_digits

    ds = uci_digit_sets["semeion_img"]
    assert ds.X.shape == (1593, 1, 16, 16) and set(np.unique(ds.X)) == {0, 255}
    np.testing.assert_array_equal(np.bincount(ds.y),
                                  [161, 162, 159, 159, 161, 159, 161, 158, 155, 158])
    # orientation: class means pooled to 8x8 vs scikit-learn's digit means; the row-major
    # reading is recognised about twice as often as any transposed/rotated/mirrored one
    bunch = load_digits()

    def unit(a):
        a = a - a.mean(1, keepdims=True)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    means = unit(np.stack([bunch.data[bunch.target == c].mean(0) for c in range(10)]))
    images = ds.X[:, 0].astype(float) / 255
    scores = {}
    for k in range(4):
        for mirror in (False, True):
            view = np.rot90(images, k, axes=(1, 2))
            view = view[:, :, ::-1] if mirror else view
            pooled = view.reshape(-1, 8, 2, 8, 2).mean((2, 4)).reshape(len(view), 64)
            scores[(k, mirror)] = np.mean(np.argmax(unit(pooled) @ means.T, 1) == ds.y)
    best_other = max(v for key, v in scores.items() if key != (0, False))
    assert scores[(0, False)] > 1.5 * best_other, scores


@pytest.mark.real_data
def test_optical_img_test_rows_equal_sklearn_digits(uci_digit_sets):
    from sklearn.datasets import load_digits

    ds = uci_digit_sets["optical_img"]
    assert ds.X.shape == (5620, 1, 8, 8) and ds.X.dtype == np.uint8
    np.testing.assert_array_equal(ds.test_idx, np.arange(3823, 5620))
    # the UCI test file is optdigits.tes = scikit-learn's digits, same rows, same order
    np.testing.assert_array_equal(ds.X[ds.test_idx], data.get_dataset("digits").X)
    np.testing.assert_array_equal(ds.y[ds.test_idx], load_digits().target)
    levels = _digits.to_uint8(np.arange(17), 16)
    assert np.isin(ds.X[:3823], levels).all() and ds.X[:3823].max() == 255
    assert not ds.X[:, 0, 0, 0].any() and not ds.X[:, 0, 4, 7].any()  # dropped pixels 0, 39
