"""Decoding helpers shared by the image parsers: restricted unpickling and image files."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from bench.errors import LossbenchError

# what the CIFAR python pickles may reference: numpy array reconstruction and nothing else,
# so a tampered archive cannot run code on load
_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("_codecs").encode,  # Python 3 protocol-2 bytes
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_pickle(data: bytes) -> Any:
    """A Python 2 pickle as CIFAR ships it (``encoding='bytes'``: keys stay ``b"data"``)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()


def decode_image(data: bytes, where: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 ``[3, H, W]`` (RGB; grey images are repeated to three channels).

    ``size`` (H, W), when given, is checked: CINIC is 32x32 and Tiny-ImageNet 64x64 throughout.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LossbenchError(f"{where}: not a readable image ({exc})") from None
    if size is not None and rgb.shape[:2] != size:
        raise LossbenchError(f"{where}: image is {rgb.shape[0]}x{rgb.shape[1]}; expected "
                             f"{size[0]}x{size[1]}")
    return rgb.transpose(2, 0, 1)
