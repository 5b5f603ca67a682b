"""Paired per-dataset tests on a collected summary: what decides a study's claims.

A claim compares methods on the same datasets (and seeds), so each comparison is a vector of
per-block differences and a one-sided Wilcoxon signed-rank test (zero differences split,
Demšar 2006), with Holm's adjustment over all the comparisons of one claim. Blocks are the
datasets (metric averaged over seeds and folds: ``unit="dataset"``) or dataset x seed pairs
(``unit="block"``: few datasets, paired seeds, as the two-scale paper's 30 initialisations).

Three contrasts, for the three kinds of claim the papers make:

- ``difference``: method − other ("Lq beats CE");
- ``versus`` a second metric: (method − other) on ``metric`` minus the same on ``versus``
  ("the close-enough gain exceeds the top-1 gain");
- ``relative_to`` a reference: |method − reference| − |other − reference| ("large η recovers
  the one-scale behaviour": closer to it than small η).

A summary without noise columns is one clean level (``noise_kind`` none). Reads result tables
only (no torch, no training code).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._input import require_columns
from bench.errors import LossbenchError

CLEAN = "none"  # noise_kind of clean runs (and of a study without label noise)
TEST_COLUMNS = ["noise_kind", "noise_rate", "method", "other", "n_datasets", "mean_diff",
                "n_better", "n_worse", "statistic", "p_value", "p_holm"]
UNITS = {"dataset": ["dataset"], "block": ["dataset", "seed"]}


def metric_blocks(summary: pd.DataFrame, metric: str, kinds: Sequence[str],
                  source: str = "summary", unit: str = "dataset"
                  ) -> dict[tuple[str, float], pd.DataFrame]:
    """{(noise_kind, noise_rate): blocks x methods of ``metric`` in %, averaged over folds
    (and seeds for ``unit="dataset"``), complete blocks only} for the levels of ``kinds``
    (one arch's rows)."""
    if unit not in UNITS:
        raise LossbenchError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}")
    if "noise_kind" not in summary.columns:  # a study without label noise: one clean level
        summary = summary.assign(noise_kind=CLEAN, noise_rate=0.0)
    need = [*UNITS[unit], "loss", "noise_kind", "noise_rate", metric]
    require_columns(summary, need, source, "the summary.csv of a study (`lossbench collect`)")
    rows = summary[summary["noise_kind"].isin(list(kinds))]
    out = {}
    for (kind, rate), part in rows.groupby(["noise_kind", "noise_rate"], sort=True):
        block = (100 * part.groupby([*UNITS[unit], "loss"])[metric].mean()).unstack("loss")
        out[(str(kind), float(rate))] = block.dropna(axis=0, how="any")
    return out


def _column(block: pd.DataFrame, method: str, metric: str, where: str, source: str
            ) -> pd.Series:
    if method not in block.columns:
        raise LossbenchError(f"{source}: no {metric} of {method!r} at {where}; methods there: "
                             f"{', '.join(block.columns)}")
    return block[method]


def paired_tests(summary: pd.DataFrame, methods: Sequence[str], over: Sequence[str] | str,
                 kinds: Sequence[str], metric: str = "test_acc", alternative: str = "greater",
                 source: str = "summary", *, unit: str = "dataset", versus: str | None = None,
                 relative_to: str | None = None) -> pd.DataFrame:
    """Each of ``methods`` against each of ``over`` (``"others"``: every other method) at each
    level of ``kinds``: one-sided Wilcoxon signed-rank over blocks of the contrast (module
    doc; H1: it lies above zero for ``greater``, below for ``less``), Holm over all rows."""
    from statsmodels.stats.multitest import multipletests

    from analysis.stats import wilcoxon_one_sided

    if alternative not in ("greater", "less"):
        raise LossbenchError(f"alternative must be 'greater' or 'less'; got {alternative!r}")
    second = (metric_blocks(summary, versus, kinds, source, unit) if versus is not None
              else {})
    rows = []
    for level, block in metric_blocks(summary, metric, kinds, source, unit).items():
        where = f"{level[0]} {level[1]:g}"
        if versus is not None:  # blocks where both metrics are defined
            common = block.index.intersection(second[level].index)
            block, other_block = block.loc[common], second[level].loc[common]
        others = [m for m in block.columns if m not in methods] if over == "others" else over
        for method in methods:
            for other in others:
                a = _column(block, method, metric, where, source)
                b = _column(block, other, metric, where, source)
                if relative_to is not None:
                    ref = _column(block, relative_to, metric, where, source)
                    d = ((a - ref).abs() - (b - ref).abs()).to_numpy()
                elif versus is not None:
                    base = (_column(other_block, method, versus, where, source)
                            - _column(other_block, other, versus, where, source))
                    d = ((a - b) - base).to_numpy()
                else:
                    d = (a - b).to_numpy()
                if d.size == 0:
                    raise LossbenchError(f"{source}: no block has {metric} of {method!r} and "
                                         f"{other!r} at {where}")
                stat, p = wilcoxon_one_sided(d, alternative)
                rows.append([level[0], level[1], method, other, len(d), float(np.mean(d)),
                             int(np.sum(d > 0)), int(np.sum(d < 0)), stat, p])
    table = pd.DataFrame(rows, columns=TEST_COLUMNS[:-1])
    if table.empty:
        raise LossbenchError(f"{source}: no {', '.join(kinds)} noise level to test")
    table["p_holm"] = multipletests(table["p_value"], method="holm")[1]
    return table
