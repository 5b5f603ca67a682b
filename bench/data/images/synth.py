"""Write small archives in the exact CIFAR python format, for smoke runs and dry pipelines.

No machine here holds CIFAR; CI still drives the real loader, cache and trainer over a file
with the real layout: ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` and
``batches.meta`` (or ``cifar-100-python/train``, ``test``, ``meta``), pickled dicts with the
real byte-string keys, 3072 uint8 values per row (R, G, B planes of 32 x 32). Each class gets
its own mean colour and stripe so a model can learn something in two epochs.

``python -m bench.data.images.synth cifar10 --out smoke/cifar-10-python.tar.gz --n 100``
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

from bench.io import atomic_write

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


def _images(labels: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of 3072 uint8: noise around a class colour, plus a class-dependent stripe."""
    colours = np.linspace(30, 225, n_classes)
    x = rng.normal(0, 40, size=(labels.size, 3, 32, 32)) + colours[labels, None, None, None]
    rows = (labels * 3) % 32
    x[np.arange(labels.size), :, rows, :] = 255
    return np.clip(x, 0, 255).astype(np.uint8).reshape(labels.size, 3072)


def _pickled(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=2)


def cifar_members(kind: str, n_per_batch: int, seed: int = 0) -> dict[str, bytes]:
    """Archive members (name -> bytes) of a CIFAR-10 or CIFAR-100 python archive."""
    rng = np.random.default_rng(seed)
    if kind == "cifar10":
        members = {}
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            labels = rng.integers(0, 10, n_per_batch)
            members[f"cifar-10-batches-py/{name}"] = _pickled({
                b"batch_label": name.encode(), b"labels": labels.tolist(),
                b"data": _images(labels, 10, rng),
                b"filenames": [f"{name}_{i}.png".encode() for i in range(n_per_batch)]})
        members["cifar-10-batches-py/batches.meta"] = _pickled({
            b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch":
            n_per_batch, b"num_vis": 3072})
        return members
    if kind == "cifar100":
        members = {}
        for name, n in (("train", 5 * n_per_batch), ("test", n_per_batch)):
            fine = rng.integers(0, 100, n)
            members[f"cifar-100-python/{name}"] = _pickled({
                b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
                b"batch_label": name.encode(), b"fine_labels": fine.tolist(),
                b"coarse_labels": (fine // 5).tolist(), b"data": _images(fine, 100, rng)})
        members["cifar-100-python/meta"] = _pickled({
            b"fine_label_names": [f"fine{i:02d}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i:02d}".encode() for i in range(20)]})
        return members
    raise ValueError(f"kind must be cifar10 or cifar100; got {kind!r}")


def write_cifar_archive(path: str | Path, kind: str = "cifar10", n_per_batch: int = 100,
                        seed: int = 0) -> Path:
    """Write a ``.tar.gz`` in the official layout (atomically)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in cifar_members(kind, n_per_batch, seed).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    payload = buffer.getvalue()
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data.images.synth",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("cifar10", "cifar100"))
    parser.add_argument("--out", required=True, help="archive path (.tar.gz)")
    parser.add_argument("--n", type=int, default=100, help="images per batch file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_cifar_archive(args.out, args.kind, args.n, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
