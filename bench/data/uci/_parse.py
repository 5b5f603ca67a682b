"""Parse and validate the Fernández-Delgado files of one dataset (format: shared uci121 README).

Every check fails with one line naming the file and what was wrong, because a silently
misread dataset would corrupt every downstream table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import DatasetMissingError, LossbenchError

_INT_KEYS = ("n_entradas", "n_clases", "n_arquivos", "n_patrons1")


@dataclass(frozen=True)
class Meta:
    """The ``<name>.txt`` description of a dataset."""

    n_features: int
    n_classes: int
    files: tuple[str, ...]
    rows: tuple[int, ...]
    n_train: int | None
    n_val: int | None

    @property
    def n_samples(self) -> int:
        return sum(self.rows)


def parse_meta(path: Path) -> Meta:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetMissingError(f"{path}: description file not found") from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()

    def integer(key: str, required: bool = True) -> int | None:
        if key not in values:
            if required:
                raise LossbenchError(f"{path}: missing key '{key}='")
            return None
        try:
            return int(values[key])
        except ValueError:
            raise LossbenchError(
                f"{path}: '{key}=' must be an integer, got {values[key]!r}"
            ) from None

    n_features, n_classes, n_files, n1 = (integer(k) for k in _INT_KEYS)
    if n_files not in (1, 2):
        raise LossbenchError(f"{path}: 'n_arquivos=' must be 1 or 2, got {n_files}")
    files = [values.get("fich1")]
    rows = [n1]
    if n_files == 2:
        files.append(values.get("fich2"))
        rows.append(integer("n_patrons2"))
    if any(not f for f in files):
        raise LossbenchError(f"{path}: missing key 'fich{len(files)}='")
    if min(n_features, n_classes, *rows) < 1:
        raise LossbenchError(f"{path}: counts must be positive, got {values}")
    return Meta(
        n_features, n_classes, tuple(files), tuple(rows),
        integer("n_patrons_entrena", False), integer("n_patrons_valida", False),
    )


def parse_rdat(path: Path, n_rows: int, n_features: int, n_classes: int):
    """Read one ``_R.dat`` with pandas' C parser; return (X float32, y int64)."""
    if not path.is_file():
        raise DatasetMissingError(f"{path}: data file not found")
    try:
        frame = pd.read_csv(path, sep="\t", header=None, skiprows=1, dtype=np.float64,
                            engine="c", na_filter=True)
    except pd.errors.EmptyDataError:
        raise LossbenchError(f"{path}: no data rows (expected {n_rows})") from None
    except (ValueError, pd.errors.ParserError) as exc:
        reason = str(exc).splitlines()[0]
        raise LossbenchError(f"{path}: unreadable numbers or ragged rows ({reason})") from None
    values = frame.to_numpy()
    if values.shape[1] != n_features + 2:
        raise LossbenchError(
            f"{path}: expected {n_features} features (+ row number and label = "
            f"{n_features + 2} columns), got {values.shape[1]} columns"
        )
    if values.shape[0] != n_rows:
        raise LossbenchError(f"{path}: expected {n_rows} data rows (.txt), got {values.shape[0]}")
    if not np.isfinite(values).all():
        row = int(np.nonzero(~np.isfinite(values).all(axis=1))[0][0])
        raise LossbenchError(f"{path}: missing or non-finite value in data row {row + 1}")
    if not np.array_equal(values[:, 0], np.arange(1, n_rows + 1)):
        row = int(np.nonzero(values[:, 0] != np.arange(1, n_rows + 1))[0][0])
        raise LossbenchError(
            f"{path}: row numbers must run 1..{n_rows}; data row {row + 1} has {values[row, 0]:g}"
        )
    labels = values[:, -1]
    bad = (labels != np.round(labels)) | (labels < 0) | (labels > n_classes - 1)
    if bad.any():
        row = int(np.nonzero(bad)[0][0])
        raise LossbenchError(
            f"{path}: label {labels[row]:g} in data row {row + 1} is outside "
            f"0..{n_classes - 1} (n_clases={n_classes})"
        )
    return values[:, 1:-1].astype(np.float32), labels.astype(np.int64)


def parse_index_lines(path: Path, n_lines: int) -> list[np.ndarray]:
    """Read an index file (whitespace-separated integers, one set per line)."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise DatasetMissingError(f"{path}: index file not found") from None
    if len(lines) != n_lines:
        raise LossbenchError(f"{path}: expected {n_lines} lines of indexes, got {len(lines)}")
    out = []
    for number, line in enumerate(lines, 1):
        try:
            out.append(np.array(line.split(), dtype=np.int64))
        except ValueError:
            raise LossbenchError(f"{path}: line {number} holds a non-integer index") from None
    return out


def check_pair(path: Path, train: np.ndarray, test: np.ndarray, n1: int, line: int) -> None:
    """Indexes in range 0..n1-1, not repeated, and train/test disjoint."""
    for offset, idx in enumerate((train, test)):
        where = f"{path}: line {line + offset}"
        if idx.size == 0:
            raise LossbenchError(f"{where} is empty")
        if idx.min() < 0 or idx.max() >= n1:
            bad = int(idx[(idx < 0) | (idx >= n1)][0])
            raise LossbenchError(f"{where}: index {bad} out of range 0..{n1 - 1} (fich1 rows)")
        if np.unique(idx).size != idx.size:
            raise LossbenchError(f"{where}: {idx.size - np.unique(idx).size} duplicated indexes")
    overlap = np.intersect1d(train, test)
    if overlap.size:
        raise LossbenchError(
            f"{path}: lines {line} and {line + 1} overlap in {overlap.size} indexes "
            f"(first: {int(overlap[0])})"
        )


def parse_split_matrix(path: Path, n_rows: int) -> np.ndarray:
    """Read a Klambauer ``folds_py.dat``/``validation_folds_py.dat`` (n x 4 of 0/1)."""
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float64, engine="c")
    except FileNotFoundError:
        raise DatasetMissingError(f"{path}: split file not found") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LossbenchError(f"{path}: unreadable split file ({reason})") from None
    values = frame.to_numpy()
    if values.shape != (n_rows, 4):
        raise LossbenchError(
            f"{path}: expected {n_rows} rows x 4 columns (one per pattern), got "
            f"{values.shape[0]} x {values.shape[1]}"
        )
    if not np.isin(values, (0, 1)).all():
        raise LossbenchError(f"{path}: values must be 0 or 1")
    return values.astype(np.int8)


def parse_labels(path: Path, n_rows: int) -> np.ndarray:
    try:
        values = pd.read_csv(path, header=None, dtype=np.float64, engine="c").to_numpy()
    except FileNotFoundError:
        raise DatasetMissingError(f"{path}: label file not found") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise LossbenchError(f"{path}: unreadable labels (expected one integer per line)") from None
    if values.shape != (n_rows, 1):
        raise LossbenchError(f"{path}: expected {n_rows} labels, got {values.shape[0]} rows")
    return values[:, 0].astype(np.int64)
