"""Image-file trees small enough to cache as one uint8 array: CINIC-10 and Tiny-ImageNet.

Rows are in a fixed order whatever the archive order: part, then class (sorted folder names),
then file name; each image is decoded once and checked for its published size.
"""

from __future__ import annotations

import re

import numpy as np

from bench.data.images._decode import decode_image
from bench.data.images._source import ImageSource
from bench.errors import LossbenchError

CINIC_PARTS = ("train", "valid", "test")
CINIC_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
_CINIC = re.compile(r"(?:^|/)(train|valid|test)/([^/]+)/([^/]+\.png)$", re.IGNORECASE)


def cinic_member(member: str) -> bool:
    return _CINIC.search(member) is not None


def parse_cinic(src: ImageSource) -> tuple[dict[str, np.ndarray], dict]:
    """CINIC-10 (Darlow et al. 2018): ``train/ valid/ test/``, each with the 10 class folders
    of 32x32 PNGs (90,000 images per part)."""
    rows: list[tuple[int, int, str, np.ndarray]] = []
    index = {c: i for i, c in enumerate(CINIC_CLASSES)}
    for member, data in src.members(cinic_member):
        match = _CINIC.search(member)
        assert match is not None, member
        part, cls, fname = match.groups()
        if cls not in index:
            raise src.fail(member, f"unknown class folder {cls!r}; CINIC-10 has "
                                   f"{', '.join(CINIC_CLASSES)}")
        rows.append((CINIC_PARTS.index(part.lower()), index[cls], fname,
                     decode_image(data, src.where(member), (32, 32))))
    present = {(p, c) for p, c, _, _ in rows}
    for p, part in enumerate(CINIC_PARTS):
        absent = [c for c in CINIC_CLASSES if (p, index[c]) not in present]
        if absent:
            raise LossbenchError(f"{src.shown}: no {part}/{absent[0]}/*.png (CINIC-10 has "
                                 f"{part}/ with the 10 class folders)")
    rows.sort(key=lambda r: r[:3])
    part = np.array([r[0] for r in rows], dtype=np.int64)
    arrays = {"X": np.stack([r[3] for r in rows]),
              "y": np.array([r[1] for r in rows], dtype=np.int64),
              "test_idx": np.flatnonzero(part == 2), "valid_idx": np.flatnonzero(part == 1)}
    return arrays, {"class_names": list(CINIC_CLASSES)}


_TINY = re.compile(r"(?:^|/)(?:(wnids\.txt|words\.txt)|val/(val_annotations\.txt)|"
                   r"train/([^/]+)/images/([^/]+\.jpe?g)|val/images/([^/]+\.jpe?g))$",
                   re.IGNORECASE)


def tiny_member(member: str) -> bool:
    return _TINY.search(member) is not None


def parse_tiny(src: ImageSource) -> tuple[dict[str, np.ndarray], dict]:
    """Tiny-ImageNet-200: ``train/<wnid>/images/*.JPEG`` (500 per class), ``val/images`` with
    ``val/val_annotations.txt`` (file, wnid, box) and ``wnids.txt``; 64x64 images.

    The unlabelled ``test/`` images are skipped: the labelled 10,000 ``val`` images are the
    held-out set papers report (``test_idx``).
    """
    texts: dict[str, tuple[str, str]] = {}
    train: list[tuple[str, str, np.ndarray]] = []
    val: dict[str, tuple[str, np.ndarray]] = {}
    for member, data in src.members(tiny_member):
        match = _TINY.search(member)
        assert match is not None, member
        text, annotations, wnid, train_file, val_file = match.groups()
        if text or annotations:
            texts[(text or annotations).lower()] = (member, data.decode("utf-8", "replace"))
        elif wnid:
            train.append((wnid, train_file, decode_image(data, src.where(member), (64, 64))))
        else:
            val[val_file] = (member, decode_image(data, src.where(member), (64, 64)))
    for needed in ("wnids.txt", "val_annotations.txt"):
        if needed not in texts:
            raise LossbenchError(f"{src.shown}: no {needed} (expected the tiny-imagenet-200 "
                                 "layout)")
    wnids_member, wnids_text = texts["wnids.txt"]
    wnids = sorted(set(wnids_text.split()))
    index = {w: i for i, w in enumerate(wnids)}
    stray = sorted({w for w, _, _ in train} - set(wnids))
    if stray:
        raise src.fail(wnids_member, f"lacks {stray[0]}, a folder of train/")
    labels_member, labels_text = texts["val_annotations.txt"]
    val_labels: dict[str, int] = {}
    for line_no, line in enumerate(labels_text.splitlines(), 1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2:
            raise src.fail(labels_member, f"line {line_no}: expected 'file<TAB>wnid<TAB>box'")
        if fields[1] not in index:
            raise src.fail(labels_member, f"line {line_no}: wnid {fields[1]!r} is not in "
                                          "wnids.txt (label out of range)")
        val_labels[fields[0]] = index[fields[1]]
    unlabelled = sorted(set(val) - set(val_labels))
    if unlabelled:
        raise src.fail(labels_member, f"no label for val/images/{unlabelled[0]}")
    if not train or not val:
        raise LossbenchError(f"{src.shown}: no {'train' if not train else 'val'} images")
    train.sort(key=lambda r: (index[r[0]], r[1]))
    names = sorted(val)
    X = np.stack([r[2] for r in train] + [val[f][1] for f in names])
    y = np.array([index[r[0]] for r in train] + [val_labels[f] for f in names], dtype=np.int64)
    return ({"X": X, "y": y, "test_idx": np.arange(len(train), y.size, dtype=np.int64)},
            {"class_names": _words(texts, wnids), "wnids": wnids})


def _words(texts: dict[str, tuple[str, str]], wnids: list[str]) -> list[str]:
    """First name of each wnid from ``words.txt`` (the wnid itself where it has none)."""
    words = {}
    for line in texts.get("words.txt", ("", ""))[1].splitlines():
        wnid, _, names = line.partition("\t")
        words[wnid.strip()] = names.split(",")[0].strip()
    return [words.get(w) or w for w in wnids]
