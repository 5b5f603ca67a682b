"""Escaping-efficiency verdicts from `lossbench probe escaping` tables.

The mixing paper (section "Escaping Efficiency", eqs. 17-19) claims EE(L_ab) > EE(L_ce) and,
in its supplementary, EE(L_ce) > EE(L_el), with EE ~ (t / 2) Tr(H Sigma) (Zhu et al. 2018).
Each loss is probed on its own training run, at the same epochs. Per dataset and model, a
claim "a > b" holds when a's trace, averaged over the probed epochs, exceeds b's (also
reported epoch by epoch). The verdict per claim and model is the fraction of datasets where it
holds, with a one-sided sign test (``scipy.stats.binomtest``, p = 1/2, ties and datasets where
either run diverged dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.errors import LossbenchError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: (a, b): "EE(a) > EE(b)"; the paper's two inequalities, for strategy 3 and F = 0.
CLAIMS: tuple[tuple[str, str], ...] = (("ce_el_0to05", "ce"), ("ce_el_0", "ce"), ("ce", "el"))
NEEDED = {"dataset", "model", "loss", "epoch", "trace", "diverged"}


def read_probe_tables(paths: Iterable[str]) -> pd.DataFrame:
    """The probe CSVs of several datasets as one table (checked columns, one line per error)."""
    frames = []
    for path in paths:
        try:
            frame = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise LossbenchError(f"{path}: cannot read the probe table ({err})") from None
        missing = NEEDED - set(frame.columns)
        if missing:
            raise LossbenchError(f"{path}: not a `lossbench probe escaping` table; missing "
                                 f"columns {sorted(missing)}")
        frames.append(frame)
    if not frames:
        raise LossbenchError("escaping verdict: no probe tables given")
    return pd.concat(frames, ignore_index=True)


def parse_claims(text: str) -> list[tuple[str, str]]:
    """``"ce_el_0to05>ce,ce>el"`` -> [("ce_el_0to05", "ce"), ("ce", "el")]."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        a, sep, b = item.partition(">")
        if not sep or not a.strip() or not b.strip():
            raise LossbenchError(f"--claims: expected A>B items separated by commas; got "
                                 f"{item!r}")
        out.append((a.strip(), b.strip()))
    return out


def dataset_traces(table: pd.DataFrame) -> pd.DataFrame:
    """Tr(H Sigma) per (dataset, model, loss): each probed epoch and their mean ("all");
    NaN where the run diverged by that epoch."""
    t = table.assign(trace=table["trace"].where(~table["diverged"].astype(bool)))
    per_epoch = t[["dataset", "model", "loss", "epoch", "trace"]].assign(
        epoch=t["epoch"].astype(str))
    mean = (t.groupby(["dataset", "model", "loss"], sort=False)["trace"]
            .agg(lambda s: s.mean() if s.notna().all() else np.nan).reset_index()
            .assign(epoch="all"))
    return pd.concat([per_epoch, mean[per_epoch.columns]], ignore_index=True)


def sign_tests(table: pd.DataFrame, claims: Sequence[tuple[str, str]] = CLAIMS) -> pd.DataFrame:
    """Per claim, model and epoch ("all" = the mean over epochs): datasets compared, where the
    claim holds, the fraction, and the one-sided sign-test p-value."""
    from scipy.stats import binomtest

    traces = dataset_traces(table)
    wide = traces.pivot_table(index=["model", "epoch", "dataset"], columns="loss",
                              values="trace", aggfunc="first", dropna=False)
    rows = []
    for a, b in claims:
        for loss in (a, b):
            if loss not in wide.columns:
                raise LossbenchError(f"escaping verdict: claim {a}>{b}: no probe rows for loss "
                                     f"{loss!r}; the tables have {sorted(wide.columns)}")
        groups = dict(iter(wide.groupby(level=["model", "epoch"], sort=False)))
        for model, epoch in sorted(groups, key=lambda k: (k[0], _epoch_key(k[1]))):
            both = groups[(model, epoch)][[a, b]].dropna()
            diff = both[a] - both[b]
            holds, n = int((diff > 0).sum()), int((diff != 0).sum())
            p = binomtest(holds, n, 0.5, alternative="greater").pvalue if n else np.nan
            rows.append({"claim": f"EE({a}) > EE({b})", "a": a, "b": b, "model": model,
                         "epoch": epoch, "n_datasets": n, "n_holds": holds,
                         "fraction": holds / n if n else np.nan, "p_value": p,
                         "median_a": both[a].median(), "median_b": both[b].median()})
    return pd.DataFrame(rows)


def _epoch_key(epoch: str) -> tuple[int, int]:
    return (1, 0) if epoch == "all" else (0, int(epoch))


def trace_plot(table: pd.DataFrame, ax: Axes, model: str,
               losses: Sequence[str] | None = None) -> Axes:
    """Median over datasets of Tr(H Sigma) per loss against the epoch, interquartile band;
    log scale (traces span orders of magnitude across datasets)."""
    part = table[(table["model"] == model) & ~table["diverged"].astype(bool)]
    losses = list(losses or dict.fromkeys(part["loss"]))
    for k, loss in enumerate(losses):
        rows = part[part["loss"] == loss].groupby("epoch")["trace"]
        q = rows.quantile([0.25, 0.5, 0.75]).unstack()
        if q.empty:
            continue
        line, = ax.plot(q.index, q[0.5], marker="o", label=loss,
                        linestyle=("-", "--", "-.", ":")[k % 4])
        ax.fill_between(q.index, q[0.25], q[0.75], alpha=0.15, color=line.get_color())
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlabel("epoch")
    ax.set_ylabel("Tr(HΣ) (median over datasets)")
    ax.set_title(model)
    ax.legend(fontsize="small")
    return ax


def trace_figure(table: pd.DataFrame, losses: Sequence[str] | None = None) -> Figure:
    """One panel per model of ``trace_plot``."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(table["model"]))
    fig = Figure(figsize=(4.5 * len(models), 3.6), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, model in zip(axes, models, strict=True):
        trace_plot(table, ax, model, losses)
    fig.suptitle("Escaping efficiency: Tr(HΣ) over training per loss")
    return fig
