"""Test accuracy per epoch for Lq with several q (CE as q -> 0) under uniform noise: the GCE
paper's Fig. 2 (Zhang & Sabuncu 2018, ResNet-34 on CIFAR-10) on other data.

From a noise study's collected ``epochs.csv.gz`` (every epoch of every lr) and
``summary.csv`` (the lr selected on the noisy validation labels): for each dataset, noise
level and method, the per-epoch test accuracy at the selected lr, averaged over seeds. A
method's q is read from its name (``gce(q=0.5)``; ``ce`` is q = 0); methods are drawn in q
order on a sequential colour map, so larger q is darker throughout.

Reads result tables only (no torch, no bench.train).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from analysis._input import require_columns
from bench.errors import LossbenchError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KEYS = ["dataset", "arch", "loss", "seed", "noise_kind", "noise_rate"]
CURVE_COLUMNS = ["dataset", "arch", "noise_kind", "noise_rate", "loss", "q", "epoch",
                 "n_seeds", "test_acc"]
_Q = re.compile(r"(?:^|[(,\s])q=([0-9.eE+-]+)")


def method_q(method: str) -> float:
    """q of a method name: ``gce(q=0.5)`` -> 0.5, ``ce`` -> 0 (Lq's q -> 0 limit), else nan."""
    if method == "ce":
        return 0.0
    match = _Q.search(method)
    return float(match.group(1)) if match else math.nan


def _check(table: pd.DataFrame, need: Sequence[str], source: str) -> None:
    require_columns(table, need, source,
                    "the collected tables of a noise study (`lossbench collect`)")


def q_curves(epochs: pd.DataFrame, summary: pd.DataFrame, arch: str,
             source: str = "epochs") -> pd.DataFrame:
    """``CURVE_COLUMNS``: seed-averaged test accuracy (%) per epoch at the selected lr."""
    _check(epochs, [*KEYS, "lr", "epoch", "test_acc"], source)
    _check(summary, [*KEYS, "lr"], "summary")
    chosen = summary[summary["arch"] == arch][[*KEYS, "lr"]].drop_duplicates()
    if chosen.empty:
        raise LossbenchError(f"summary: no rows for arch={arch!r}")
    rows = epochs[epochs["arch"] == arch].merge(chosen, on=[*KEYS, "lr"], how="inner")
    curves = (rows.groupby(["dataset", "arch", "noise_kind", "noise_rate", "loss", "epoch"])
              .agg(n_seeds=("seed", "nunique"), test_acc=("test_acc", "mean")).reset_index())
    curves["test_acc"] *= 100
    curves.insert(5, "q", curves["loss"].map(method_q))
    return curves[CURVE_COLUMNS].sort_values(
        ["dataset", "noise_kind", "noise_rate", "q", "loss", "epoch"]).reset_index(drop=True)


def draw_q_curves(curves: pd.DataFrame, arch: str) -> Figure:
    """Rows: datasets; columns: noise levels (clean first); one line per method, by q."""
    import matplotlib as mpl
    from matplotlib.figure import Figure

    part = curves[curves["arch"] == arch]
    if part.empty:
        raise LossbenchError(f"no q-sweep curves for arch={arch!r}")
    datasets = sorted(part["dataset"].unique())
    levels = sorted({(k, float(r)) for k, r in zip(part["noise_kind"], part["noise_rate"],
                                                     strict=True)},
                    key=lambda kr: (kr[0] != "none", kr[0], kr[1]))
    methods = (part[["loss", "q"]].drop_duplicates()
               .sort_values(["q", "loss"], na_position="last")["loss"].tolist())
    cmap = mpl.colormaps["viridis"]
    colours = {m: cmap(i / max(len(methods) - 1, 1) * 0.9) for i, m in enumerate(methods)}
    fig = Figure(figsize=(3.6 * len(levels), 2.8 * len(datasets)))
    axes = fig.subplots(len(datasets), len(levels), squeeze=False, sharex=True)
    for i, dataset in enumerate(datasets):
        for j, (kind, rate) in enumerate(levels):
            ax = axes[i, j]
            cell = part[(part["dataset"] == dataset) & (part["noise_kind"] == kind)
                        & (part["noise_rate"] == rate)]
            for method in methods:
                line = cell[cell["loss"] == method]
                q = method_q(method)
                label = "CE (q → 0)" if method == "ce" else (
                    f"Lq q = {q:g}" if not math.isnan(q) else method)
                ax.plot(line["epoch"], line["test_acc"], color=colours[method], lw=1.2,
                        label=label)
            ax.set_title(f"{dataset}, {'clean' if kind == 'none' else f'{kind} η = {rate:g}'}",
                         fontsize=9)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("test accuracy (%)")
            if i == len(datasets) - 1:
                ax.set_xlabel("epoch")
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    fig.suptitle(f"{arch}: test accuracy per epoch at the lr selected on the noisy validation "
                 "labels (mean over seeds)")
    fig.tight_layout()
    return fig
