"""Job order for the workflow: the longest train jobs first, so no core idles at the end.

Snakemake starts ready jobs in priority order; with equal priorities a big dataset may start
last and run alone while the other cores wait (issue 16 measured idle cores at the end of the
UCI schedule). The cost of a stacked job grows with n_samples x n_features, read from the
availability table the datasets checkpoint writes; the priority is that cost on a log scale,
so it is a small integer and ties stay ties.
"""

from __future__ import annotations

import csv
import math
import os


def size_priority(table: str | os.PathLike, dataset: str) -> int:
    """``round(10 log10(1 + n_samples x (n_features + 1)))`` of ``dataset`` in ``table``
    (name, n_samples, n_features, ...); 0 when the table or the dataset is absent (a dry run
    before the checkpoint, an image dataset)."""
    try:
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("name") == dataset:
                    cost = int(row["n_samples"]) * (int(row["n_features"]) + 1)
                    return round(10 * math.log10(1 + cost))
    except (OSError, KeyError, ValueError):
        return 0
    return 0
