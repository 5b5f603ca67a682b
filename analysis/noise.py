"""Accuracy and rank versus label-noise rate: the first figure a reader of a noise study wants.

From a collected ``scores.csv`` (one row per dataset, arch, loss, seed, noise_kind,
noise_rate): per architecture and noise level, each loss's test accuracy is averaged over
seeds per dataset; datasets lacking a loss at that level (every lr diverged) are left out of
that level, as ``lossbench analyze --drop-incomplete`` does. Then, per loss, the mean over
datasets of the accuracy (percent) and of the rank among the losses (1 = best, ties
averaged), each with a seeded percentile-bootstrap 95 % CI over datasets (so reruns give the
same bytes). The clean runs (``noise_kind`` none) are rate 0 of every kind's panel.

Reads result tables only (no torch, no bench.train).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis._input import require_columns
from bench.errors import LossbenchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CLEAN = "none"  # noise_kind of the clean runs
REQUIRED = ("dataset", "arch", "loss", "seed", "noise_kind", "noise_rate", "test_acc")
CURVE_COLUMNS = ["arch", "noise_kind", "noise_rate", "loss", "n_datasets", "acc_mean",
                 "acc_low", "acc_high", "rank_mean", "rank_low", "rank_high"]
N_RESAMPLES = 2000


def level_label(kind: str, rate: float) -> str:
    """``clean`` or ``uniform 0.4``: how tables and figures name a noise level."""
    return "clean" if str(kind) == CLEAN else f"{kind} {float(rate):g}"


def level_blocks(scores: pd.DataFrame, arch: str, source: str = "scores"
                 ) -> dict[tuple[str, float], pd.DataFrame]:
    """{(noise_kind, noise_rate): datasets x losses test accuracy in %, seed-averaged,
    complete datasets only} for one architecture."""
    require_columns(scores, REQUIRED, source,
                    "the scores.csv of a noise study (`lossbench collect`)")
    rows = scores[(scores["arch"] == arch) & scores["test_acc"].notna()]
    if rows.empty:
        raise LossbenchError(f"{source}: no scored rows for arch={arch!r}; archs present: "
                             f"{', '.join(map(str, sorted(scores['arch'].unique())))}")
    rows = rows.assign(acc=100 * rows["test_acc"], noise_rate=rows["noise_rate"].astype(float))
    out = {}
    for (kind, rate), part in rows.groupby(["noise_kind", "noise_rate"], sort=True):
        block = part.groupby(["dataset", "loss"])["acc"].mean().unstack("loss")
        out[(str(kind), float(rate))] = block.dropna(axis=0, how="any")
    return out


def bootstrap_mean_ci(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """(mean, low, high): the mean with its percentile-bootstrap 95 % CI, from ``rng`` (seeded
    by the caller, so reruns give the same bytes); constant or single values give a zero-width
    interval."""
    from scipy.stats import bootstrap

    mean = float(np.mean(values))
    if len(values) < 2 or np.all(values == values[0]):
        return mean, mean, mean
    res = bootstrap((values,), np.mean, n_resamples=N_RESAMPLES, method="percentile",
                    vectorized=True, rng=rng)
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def noise_curves(scores: pd.DataFrame, archs: Sequence[str] | None = None, seed: int = 0,
                 source: str = "scores") -> pd.DataFrame:
    """The figure's numbers (``CURVE_COLUMNS``): per arch, noise level and loss, mean test
    accuracy and mean rank over datasets with bootstrap 95 % CIs."""
    archs = list(archs) if archs is not None else sorted(scores["arch"].unique())
    rows = []
    for arch in archs:
        for (kind, rate), block in level_blocks(scores, arch, source).items():
            ranks = (-block).rank(axis=1, method="average")
            rng = np.random.default_rng([seed, len(rows)])  # fixed per table position
            for loss in block.columns:
                acc = bootstrap_mean_ci(block[loss].to_numpy(), rng)
                rank = bootstrap_mean_ci(ranks[loss].to_numpy(), rng)
                rows.append([arch, kind, rate, loss, len(block), *acc, *rank])
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def method_order(methods: Sequence[str], labels: Mapping[str, str] | None) -> list[str]:
    """The labels file's order first, then the rest sorted."""
    first = [m for m in (labels or {}) if m in set(methods)]
    return first + sorted(set(methods) - set(first))


def kinds_of(curves: pd.DataFrame) -> list[str]:
    """The noise kinds with a panel row (every kind but the clean one, sorted)."""
    kinds = sorted(k for k in curves["noise_kind"].unique() if k != CLEAN)
    return kinds or [CLEAN]


def draw_curves(curves: pd.DataFrame, arch: str, labels: Mapping[str, str] | None = None
                ) -> Figure:
    """Rows: noise kinds; columns: mean test accuracy, mean rank (1 = best, at the top);
    one line per loss with its CI band; the clean runs at rate 0 of every row."""
    import matplotlib as mpl
    from matplotlib.figure import Figure

    part = curves[curves["arch"] == arch]
    if part.empty:
        raise LossbenchError(f"no curves for arch={arch!r}")
    order = method_order(list(part["loss"].unique()), labels)
    cmap = mpl.colormaps["tab10" if len(order) <= 10 else "tab20"]
    kinds = kinds_of(part)
    fig = Figure(figsize=(10, 3.2 * len(kinds)))
    axes = fig.subplots(len(kinds), 2, squeeze=False)
    clean = part[part["noise_kind"] == CLEAN]
    for row, kind in enumerate(kinds):
        level = pd.concat([clean, part[part["noise_kind"] == kind]]) if kind != CLEAN else clean
        for i, loss in enumerate(order):
            line = level[level["loss"] == loss].sort_values("noise_rate")
            for ax, what in zip(axes[row], ("acc", "rank"), strict=True):
                x = line["noise_rate"].to_numpy()
                ax.plot(x, line[f"{what}_mean"], marker="o", ms=3, color=cmap(i % cmap.N),
                        label=(labels or {}).get(loss, loss))
                ax.fill_between(x, line[f"{what}_low"], line[f"{what}_high"],
                                color=cmap(i % cmap.N), alpha=0.15, linewidth=0)
        n = sorted(level["n_datasets"].unique())
        datasets = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
        axes[row, 0].set_ylabel(f"{kind}: mean test acc. (%)")
        axes[row, 1].set_ylabel(f"{kind}: mean rank (1 = best)")
        axes[row, 1].invert_yaxis()
        for ax in axes[row]:
            ax.set_xlabel(f"{kind} noise rate η ({datasets} datasets per level)")
            ax.grid(alpha=0.3)
    axes[0, 1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"{arch}: test accuracy and rank versus label-noise rate "
                 "(mean over datasets, bootstrap 95 % CI)")
    fig.tight_layout()
    return fig
