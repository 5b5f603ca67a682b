"""ImageNet-size sets as a list of files: paths and labels in memory, pixels decoded on demand.

1.28 M full-size JPEGs do not fit one uint8 array (at 224x224 that is ~190 GB), so
``FileListDataset`` keeps ``X`` = the relative paths and decodes in ``read(i)``; it is also a
map-style dataset (``len``, ``ds[i] -> (image, label)``, optional ``transform``), so a
``torch.utils.data.DataLoader`` with workers feeds a trainer in parallel. The listing is not
cached: walking the tree is as cheap as checking a cache key for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.data._registry import Split, make_splits
from bench.data.images._decode import decode_image
from bench.errors import LossbenchError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@dataclass(eq=False)
class FileListDataset:
    """``X [N]`` relative image paths under ``root``; ``y`` int64; ``test_idx`` the val rows.

    ``input_shape`` is the crop the standard recipe feeds the network (224 x 224, the mixing
    paper's ImageNet section follows the PyTorch example); ``read(i)`` gives the full image.
    """

    name: str
    root: Path
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    n_classes: int
    family: str = "image"
    class_names: list[str] | None = None
    test_idx: np.ndarray | None = field(default=None, repr=False)
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    crop: int = 224
    transform: Callable[[np.ndarray], Any] | None = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (3, self.crop, self.crop)

    @property
    def n_samples(self) -> int:
        return int(self.y.shape[0])

    def splits(self, protocol: str) -> list[Split]:
        return make_splits(self, protocol)

    def read(self, i: int) -> np.ndarray:
        """Image ``i`` decoded to uint8 ``[3, H, W]`` at its own size."""
        path = self.root / str(self.X[i])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LossbenchError(f"{path}: cannot read ({exc.strerror})") from None
        return decode_image(data, str(path))

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image = self.read(i)
        return (image if self.transform is None else self.transform(image)), int(self.y[i])


def _images(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries
                      if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))


def _classes(part: Path) -> list[str]:
    with os.scandir(part) as entries:
        return sorted(e.name for e in entries if e.is_dir())


def list_imagenet(name: str, root: Path, shown: str, **options: Any) -> FileListDataset:
    """``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` (the 50,000 validation
    images sorted into class folders, the layout of the PyTorch ImageNet example)."""
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise LossbenchError(f"{shown}: no {part}/ folder (expected the ImageNet layout "
                                 "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG)")
    wnids = _classes(root / "train")
    if not wnids:
        raise LossbenchError(f"{shown}: train/ holds no class folders")
    index = {w: i for i, w in enumerate(wnids)}
    paths: list[str] = []
    labels: list[int] = []
    counts = []
    for part in ("train", "val"):
        for wnid in _classes(root / part):
            if wnid not in index:
                raise LossbenchError(f"{root / part / wnid}: class folder not in train/ "
                                     f"(label out of range of the {len(wnids)} train classes)")
            files = _images(root / part / wnid)
            paths += [f"{part}/{wnid}/{f}" for f in files]
            labels += [index[wnid]] * len(files)
        counts.append(len(paths) - sum(counts))
        if counts[-1] == 0:
            raise LossbenchError(f"{shown}: {part}/ holds no images")
    n_train = counts[0]
    return FileListDataset(name, root, np.array(paths, dtype=object),
                           np.array(labels, dtype=np.int64), len(wnids), class_names=wnids,
                           test_idx=np.arange(n_train, len(paths), dtype=np.int64),
                           meta={"source": shown, "wnids": wnids}, **options)
