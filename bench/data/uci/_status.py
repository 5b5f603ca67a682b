"""Availability report of every dataset: ``ok``, ``missing`` or ``invalid: <reason>``."""

from __future__ import annotations

import os

from bench.data import _sources
from bench.data.uci import _parse
from bench.data.uci._load import _data_source, load, names
from bench.errors import DatasetMissingError, LossbenchError

COLUMNS = ("name", "n_samples", "n_features", "n_classes", "status")


def dataset_status(source: str | os.PathLike | None = None,
                   splits_source: str | os.PathLike | None = None) -> list[dict]:
    """One row per dataset of the collection (and any extra folder in the source).

    The Klambauer split files are checked too when a splits source is given or
    ``$LOSSBENCH_UCI121_SPLITS`` is set (the default is a download, not done implicitly).
    """
    local = _data_source(source)
    check_splits = splits_source is not None or bool(os.environ.get(_sources.SPLITS_ENV))
    rows = []
    for name in sorted(set(names()) | set(names(local.root))):
        row = {"name": name, "n_samples": None, "n_features": None, "n_classes": None}
        try:
            ds = load(name, source, splits_source)
            if check_splits:
                ds.splits("klambauer4")
            row.update(n_samples=ds.n_samples, n_features=ds.n_features,
                       n_classes=ds.n_classes, status="ok")
        except DatasetMissingError:
            try:
                meta = _parse.parse_meta(local.root / name / f"{name}.txt")
                row.update(n_samples=meta.n_samples, n_features=meta.n_features,
                           n_classes=meta.n_classes)
            except LossbenchError:
                pass
            row["status"] = "missing"
        except LossbenchError as exc:
            row["status"] = f"invalid: {exc}"
        rows.append(row)
    return rows
