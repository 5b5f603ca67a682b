"""The image family: CIFAR, CINIC, MNIST, ImageNet sets and small digit sets, one registry.

Every loader is ``loader(source=None, **options) -> Dataset`` with ``X`` uint8
``[N, C, H, W]``, ``y`` int64, ``class_names`` and ``test_idx`` = the published test rows
(protocol ``official``: that test set, validation carved from the training rows; ``random``
for a seeded stratified split). ``options``: ``val_fraction``, ``test_fraction``.

Sources (``--source``, the ``source`` option, else ``LOSSBENCH_<NAME>``; none: one
"not configured" line): an archive (read in place, never unpacked), an extracted folder, or a
URL (downloaded once; the published md5 is checked where one is published: CIFAR-10/100 from
the CIFAR page, MNIST and Fashion-MNIST from torchvision's resource lists; CINIC-10 and
Tiny-ImageNet publish none, so none is checked). Parsed arrays are cached once under
``cache_dir()/images`` as ``.npy`` and memory-mapped (``_cache``).

Choices where the sets leave one open:

- ``cifar100``: ``y`` the 100 fine labels; ``meta["coarse_y"]`` the 20 super-class labels and
  ``meta["super_class"]`` the fine -> coarse map, for the super-class accuracy of the
  two-scale loss paper (Berlyand et al. 2021, eq. 20).
- ``cinic10``: the mixing paper trains on "180k training- and 90k test-images" (Battash et
  al. 2022, Sec. "Recognition in CIFAR100 and CINIC10"), i.e. CINIC's train + valid parts;
  so ``test_idx`` is the 90k ``test/`` rows and ``official`` carves its validation slice from
  train + valid. ``meta["valid_idx"]`` keeps CINIC's own valid rows.
- ``tiny_imagenet``: ``test_idx`` is the labelled 10k ``val`` set (the ``test/`` images have
  no labels); classes are the sorted wnids, ``class_names`` their first name in words.txt.
- ``imagenet``: a ``FileListDataset`` (paths + labels, ``read(i)`` decodes): 1.28 M images do
  not fit one array, so train through a ``torch.utils.data.DataLoader`` over it. ``test_idx``
  is the 50k validation set, as the mixing paper reports (Sec. "ImageNet").
- ``cifar10_open_set``: CIFAR-10 with 40 % of its training images replaced by CIFAR-100 images
  given class-balanced random CIFAR-10 labels, the test set CIFAR-10's (the GCE paper's Table 2
  after Wang et al. 2018; ``_open_set``). Two sources: ``source`` / ``LOSSBENCH_CIFAR10`` and
  ``open_source`` / ``LOSSBENCH_CIFAR100``; options ``open_rate`` (0.4) and ``open_seed`` (0);
  ``meta["is_outlier"]`` marks the replaced rows.
- ``digits``, ``semeion_img``, ``optical_img``: real digits that ship (scikit-learn) or come
  with the UCI-121 source (``source`` is then the UCI source, ``LOSSBENCH_UCI121``), so image
  studies run on a CPU; their rows keep the order of the original sets. ``optical_img`` also
  has the optdigits test file as ``test_idx``.

Pixel order of the three digit sets (``_digits``), checked, not assumed: all three are read
row-major. ``python -m bench.data.images.grid --out results/images/digit_grids`` draws ten
images per class (one class per row, 0 at the top); in all three grids every digit stands
upright and unmirrored. Numerically: ``optical_img``'s test rows equal scikit-learn's digits
(its copy of optdigits' test file) pixel for pixel after recovery, and ``semeion_img``'s
class means, pooled to 8x8, match scikit-learn's digit means best in the row-major reading,
about twice as often as in any of the seven transposed / rotated / mirrored readings
(tests/unit/test_data_images.py).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from bench.data._registry import register_dataset
from bench.data.arrays import ArrayDataset
from bench.data.images import _cifar, _digits, _idx, _open_set, _trees
from bench.data.images._cache import cached
from bench.data.images._filelist import FileListDataset, list_imagenet
from bench.data.images._open_set import open_set
from bench.data.images._source import ImageSource, SourceSpec, locate
from bench.errors import LossbenchError

__all__ = ["FAMILY", "SOURCES", "URLS", "FileListDataset", "open_set"]

FAMILY = "image"
OPTIONS = ("val_fraction", "test_fraction")

_MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: the official download addresses (pass one as the source to fetch it)
URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "cinic10": "https://datashare.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz",
    "mnist": _MNIST_BASE,
    "fashion_mnist": _FASHION_BASE,
    "tiny_imagenet": "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
}
_IDX_EXPECTED = "a folder (or base URL) with train-images-idx3-ubyte.gz, train-labels-idx1-" \
                "ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
SOURCES = {
    "cifar10": SourceSpec("LOSSBENCH_CIFAR10", "cifar-10-python.tar.gz or its extracted folder",
                          {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
                          subfolders=("cifar-10-batches-py",)),
    "cifar100": SourceSpec("LOSSBENCH_CIFAR100",
                           "cifar-100-python.tar.gz or its extracted folder",
                           {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"},
                           subfolders=("cifar-100-python",)),
    "cinic10": SourceSpec("LOSSBENCH_CINIC10",
                          "CINIC-10.tar.gz or its extracted folder with train/ valid/ test/", {}),
    "mnist": SourceSpec("LOSSBENCH_MNIST", _IDX_EXPECTED, {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }, files=_idx.FILES),
    "fashion_mnist": SourceSpec("LOSSBENCH_FASHION_MNIST", _IDX_EXPECTED, {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }, files=_idx.FILES),
    "imagenet": SourceSpec("LOSSBENCH_IMAGENET",
                           "a folder with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG", {}),
    "tiny_imagenet": SourceSpec("LOSSBENCH_TINY_IMAGENET",
                                "tiny-imagenet-200.zip or its extracted folder", {},
                                subfolders=("tiny-imagenet-200",)),
}
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]


def _check_options(name: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise LossbenchError(f"dataset {name!r} takes the options {', '.join(OPTIONS)}; got "
                             f"{unknown[0]!r}")


def _array_dataset(name: str, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                   **options: Any) -> ArrayDataset:
    meta = dict(meta)
    class_names = list(meta.pop("class_names"))
    extra = {k: v for k, v in arrays.items() if k not in ("X", "y", "test_idx")}
    return ArrayDataset(name, arrays["X"], arrays["y"], len(class_names), family=FAMILY,
                        class_names=class_names, test_idx=arrays.get("test_idx"),
                        meta={**meta, **extra}, **options)


def _parsed(name: str, parse, want, source=None, **options: Any) -> ArrayDataset:
    """Locate the source, parse it once into the cache, return the memory-mapped arrays."""
    _check_options(name, options)
    src = locate(name, SOURCES[name], source)
    arrays, meta = cached(name, src.key(want), partial(parse, src))
    return _array_dataset(name, arrays, {**meta, "source": src.shown}, **options)


def _idx_parse(class_names: list[str], src: ImageSource):
    arrays, meta = _idx.parse(src, len(class_names))
    return arrays, {**meta, "class_names": class_names}


_PARSED = {
    "cifar10": (partial(_cifar.parse, spec=_cifar.CIFAR10), _cifar.wanted(_cifar.CIFAR10)),
    "cifar100": (partial(_cifar.parse, spec=_cifar.CIFAR100), _cifar.wanted(_cifar.CIFAR100)),
    "cinic10": (_trees.parse_cinic, _trees.cinic_member),
    "mnist": (partial(_idx_parse, _digits.DIGIT_NAMES), _idx.wanted),
    "fashion_mnist": (partial(_idx_parse, FASHION_NAMES), _idx.wanted),
    "tiny_imagenet": (_trees.parse_tiny, _trees.tiny_member),
}
for _name, (_parse, _want) in _PARSED.items():
    register_dataset(_name, family=FAMILY, env=SOURCES[_name].env, url=URLS.get(_name))(
        partial(_parsed, _name, _parse, _want))


def _member(name: str, source: str) -> ArrayDataset:
    return _parsed(name, *_PARSED[name], source)


def _open_set_dataset(name: str, source=None, open_source=None, open_rate: float | None = None,
                      open_seed: int = 0, **options: Any) -> ArrayDataset:
    """An open-set noisy dataset (``_open_set``): a main set with outside training images."""
    _check_options(name, options)
    arrays, meta = _open_set.load(name, _member, SOURCES, source, open_source, open_rate,
                                  open_seed)
    return _array_dataset(name, arrays, meta, **options)


for _name, _spec in _open_set.OPEN_SETS.items():
    register_dataset(_name, family=FAMILY, env=SOURCES[_spec.main].env,
                     other_envs=(SOURCES[_spec.other].env,))(partial(_open_set_dataset, _name))


@register_dataset("imagenet", family=FAMILY, env=SOURCES["imagenet"].env)
def imagenet(source=None, crop: int = 224, **options: Any) -> FileListDataset:
    """ImageNet-2012 as a file list (see ``_filelist``); ``crop`` sets ``input_shape``."""
    _check_options("imagenet", options)
    src = locate("imagenet", SOURCES["imagenet"], source)
    root = src.path
    if not root.is_dir():  # an archive of the folder layout: extracted once into the cache
        from bench.data import _sources

        root = _sources.resolve(str(root), ("imagenet",), download_name="imagenet.tar").root
    return list_imagenet("imagenet", root, src.shown, crop=crop, **options)


def _no_source(name: str, source) -> None:
    if source is not None:
        raise LossbenchError(f"dataset {name!r} ships with scikit-learn; it takes no source "
                             f"(got {str(source)!r})")


@register_dataset("digits", family=FAMILY)
def digits(source=None, **options: Any) -> ArrayDataset:
    """scikit-learn's 8x8 digits, counts 0..16 scaled to 0..255; protocol ``random``."""
    _no_source("digits", source)
    _check_options("digits", options)
    X, y = _digits.digits_arrays()
    return ArrayDataset("digits", X, y, 10, family=FAMILY, class_names=_digits.DIGIT_NAMES,
                        meta={"source": "sklearn.datasets.load_digits"}, **options)


@register_dataset("semeion_img", family=FAMILY, env="LOSSBENCH_UCI121", default_source=True)
def semeion_img(source=None, **options: Any) -> ArrayDataset:
    """UCI semeion as 16x16 binary images (0/255); ``source``: the UCI-121 source."""
    _check_options("semeion_img", options)
    X, y = _digits.semeion_arrays(source)
    return ArrayDataset("semeion_img", X, y, 10, family=FAMILY,
                        class_names=_digits.DIGIT_NAMES, meta={"uci": "semeion"}, **options)


@register_dataset("optical_img", family=FAMILY, env="LOSSBENCH_UCI121", default_source=True)
def optical_img(source=None, **options: Any) -> ArrayDataset:
    """UCI optical (optdigits) as 8x8 images 0..255; ``test_idx``: the optdigits test file."""
    _check_options("optical_img", options)
    X, y, test_idx = _digits.optical_arrays(source)
    return ArrayDataset("optical_img", X, y, 10, family=FAMILY,
                        class_names=_digits.DIGIT_NAMES, test_idx=test_idx,
                        meta={"uci": "optical"}, **options)
