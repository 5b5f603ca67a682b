"""Report section ``paper_beside``: our test accuracy next to a paper's, cell by cell.

For papers whose tables are accuracies per setting (the GCE paper's Tables 1-2: one row per
dataset x noise kind x rate, one column per loss), not Table-4 rankings. Ours is the mean ±
std over seeds of ``scores.csv`` (accuracy at the best-validation epoch, as the GCE paper's
Table 1 reports) or, with ``score: last``, of every run after its last epoch (Table 2's
"average last epoch accuracies"; ``analysis.select.last_epoch_scores``).

Rows: each distinct value of the paper table's ``keys`` (paper column names; ``columns`` maps
one to ours where the names differ, default ``model`` -> ``arch``), or an explicit ``match``
list (``{label, paper: {col: value}, ours: {col: value}}``) where the two tables describe a
setting differently (the paper's "open-set" row is our ``cifar10_open_set`` dataset). Methods:
the paper's loss ids; ``methods`` maps one to our method name where they differ (the paper's
``forward_t`` is our ``forward(T=True)``), else the method with that exact name or the one
method with that loss id (``trunc_gce(prune_start=...)`` is ``trunc_gce``); ``labels`` names the
columns (default: our display label of the method).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.report.render import Context, md_table, section
from bench.errors import LossbenchError


def _loss_id(method: str) -> str:
    return str(method).split("(", 1)[0]


def _equal(values: pd.Series, value) -> pd.Series:
    """Cells equal to ``value`` (floats with a tolerance; a missing column never matches)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return values.astype(str) == str(value)
    numbers = pd.to_numeric(values, errors="coerce")
    return pd.Series(np.isclose(numbers, float(value), rtol=0, atol=1e-9), index=values.index)


def _rows_where(frame: pd.DataFrame, where: dict) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    for column, value in where.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        keep &= _equal(frame[column], value)
    return frame[keep]


def _our_method(paper_id: str, ours: list[str], methods: dict[str, str]) -> str | None:
    if paper_id in methods:
        return methods[paper_id] if methods[paper_id] in ours else None
    if paper_id in ours:
        return paper_id
    taken = set(methods.values())
    same = [m for m in ours if _loss_id(m) == paper_id and m not in taken]
    return same[0] if len(same) == 1 else None


def _fmt(mean: float, std: float | None) -> str:
    if std is None or not math.isfinite(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def _our_scores(ctx: Context, score: str) -> pd.DataFrame | None:
    if score == "best_val":
        return ctx.protocol.scores
    from analysis.select import last_epoch_scores

    path = ctx.protocol.path / "epochs.csv.gz"
    return last_epoch_scores(pd.read_csv(path), str(path)) if path.is_file() else None


def _groups(paper: pd.DataFrame, keys: list[str], match: list[dict] | None,
            columns: dict[str, str]) -> list[tuple[list[str], dict, dict]]:
    """(row label cells, paper filter, our filter) per table row."""
    if match:
        return [([str(m.get("label", m["paper"]))], dict(m["paper"]), dict(m["ours"]))
                for m in match]
    missing = [k for k in keys if k not in paper.columns]
    if missing:
        raise LossbenchError(f"paper_beside: the paper table has no column(s) {missing}")
    out = []
    for values in paper[keys].drop_duplicates().itertuples(index=False):
        where = dict(zip(keys, values, strict=True))
        out.append(([f"`{v}`" if isinstance(v, str) else f"{v:g}" for v in values], where,
                    {columns.get(k, k): v for k, v in where.items()}))
    return out


@section("paper_beside")
def paper_beside_section(ctx: Context, table: str, keys: list[str] | None = None,
                         match: list[dict] | None = None, methods: dict | None = None,
                         columns: dict | None = None, score: str = "best_val",
                         labels: dict | None = None, note: str = "") -> list[str]:
    """Our accuracy (mean ± std over seeds) / the paper's, per setting and method."""
    from analysis.paper import paper_table

    if score not in ("best_val", "last"):
        raise LossbenchError(f"paper_beside: score must be 'best_val' or 'last'; got {score!r}")
    paper = paper_table(table)
    keys = list(keys or ["dataset"])
    columns = {"model": "arch", **(columns or {})}
    methods = dict(methods or {})
    scores = _our_scores(ctx, score)
    if scores is None:
        return [f"No {'scores.csv' if score == 'best_val' else 'epochs.csv.gz'} for "
                f"`{ctx.protocol.name}`.", ""]
    scores = scores.assign(pct=100 * scores["test_acc"])
    ours = list(dict.fromkeys(scores["loss"]))
    paper_ids = list(dict.fromkeys(paper["loss"]))
    mapped = {pid: _our_method(pid, ours, methods) for pid in paper_ids}
    shown = {**{p: ctx.results.labels.get(m, p) for p, m in mapped.items() if m},
             **(labels or {})}
    n_seeds = 0
    rows = []
    groups = _groups(paper, keys, match, columns)
    for label, paper_where, our_where in groups:
        theirs = _rows_where(paper, paper_where).set_index("loss")
        mine = _rows_where(scores, our_where)
        row = list(label)
        for pid in paper_ids:
            cell = "–"
            method = mapped[pid]
            values = mine.loc[mine["loss"] == method, "pct"].dropna() if method else []
            if len(values):
                n_seeds = max(n_seeds, len(values))
                cell = _fmt(values.mean(), values.std() if len(values) > 1 else None)
            if pid in theirs.index:
                ref = theirs.loc[pid]
                std = ref["std"] if "std" in theirs.columns else None
                cell += " / " + _fmt(float(ref["mean"]), None if std is None else float(std))
            else:
                cell += " / –"
            row.append(cell)
        rows.append(row)
    head = ["setting"] if match else keys
    header = [*head, *[f"{shown.get(p, p)} (`{p}`)" for p in paper_ids]]
    when = "at the best-validation epoch" if score == "best_val" else "after the last epoch"
    intro = (f"Test accuracy (%) {when}: ours, mean ± std over {n_seeds} seeds / the paper's. "
             "`–`: not run here, or not in the paper.")
    return [*([note, ""] if note else []), intro, "", *md_table(header, rows), ""]
