"""`compare`: one call from a long results table to every table of the paper's evaluation.

Validation and pivoting live in `_input`, the statistics in `stats`; this module orients the
scores, fixes the method order and colours, and bundles the results per group in a
`Comparison`, which `tables.write_outputs` turns into files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import stats
from analysis._input import block_matrix, check_columns, read_paper_table
from bench.errors import LossbenchError


@dataclass
class Comparison:
    """All results for one group; tables are indexed/ordered by method id in display order."""

    scores: pd.DataFrame  # datasets x methods, original direction and units
    ranks: pd.DataFrame  # ranks.csv: method, mean_rank, wins, delta_vs_baseline, n_datasets
    rank_matrix: pd.DataFrame  # datasets x methods, 1 = best, ties averaged
    friedman: dict
    conover_bh: pd.DataFrame  # k x k BH-adjusted Conover p-values
    nemenyi_p: pd.DataFrame  # k x k Nemenyi p-values
    nemenyi_q: float
    nemenyi_cd: float
    profile: pd.DataFrame | None  # tau x methods; None when scores are negative
    wilcoxon_holm: pd.DataFrame
    bayes_signed_rank: pd.DataFrame
    table4: pd.DataFrame  # method, wins, delta, mean_rank, mean_rank_min (method = id)
    paper: pd.DataFrame | None  # reference Table 4 indexed by method id
    baseline: str
    labels: dict[str, str]  # method id -> display label, display order
    colors: dict[str, str]  # method id -> colour, stable across groups
    dropped: list[str]
    settings: dict
    group: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(self.scores.columns)


def method_order(methods: Sequence[str], labels: Mapping[str, str] | None) -> list[str]:
    """Methods in the configured label order first, then the rest sorted (stable figures)."""
    present = set(methods)
    first = [m for m in (labels or {}) if m in present]
    return first + sorted(present - set(first))


def method_colors(order: Sequence[str]) -> dict[str, str]:
    """One colour per method from its position in the order: same colour in every figure."""
    import matplotlib as mpl
    from matplotlib.colors import to_hex

    cmap = mpl.colormaps["tab10" if len(order) <= 10 else "tab20"]
    n = cmap.N
    return {m: to_hex(cmap(i % n)) for i, m in enumerate(order)}


def display_labels(order: Sequence[str], labels: Mapping[str, str] | None) -> dict[str, str]:
    """Display label per method (the id when none); duplicates get their id appended."""
    out = {m: str((labels or {}).get(m, m)) for m in order}
    counts = pd.Series(list(out.values())).value_counts()
    return {m: (f"{lab} ({m})" if counts[lab] > 1 else lab) for m, lab in out.items()}


def friedman_not_applicable(n_datasets: int, n_methods: int) -> dict:
    """friedman.json for two methods: the test needs three, so its numbers are null."""
    nan = float("nan")
    return {
        "n_datasets": int(n_datasets), "n_methods": int(n_methods), "applicable": False,
        "reason": (f"The Friedman test needs >= {stats.MIN_FRIEDMAN_METHODS} methods; with "
                   f"{n_methods} the Wilcoxon signed-rank and sign tests compare them "
                   "(Demšar 2006, Sec. 3.1)."),
        "chi2": nan, "p_value": nan, "iman_davenport_F": nan, "iman_davenport_p": nan,
        "tie_corrected": True, "chi2_no_tie_correction": nan, "p_value_no_tie_correction": nan,
        "iman_davenport_F_no_tie_correction": nan, "iman_davenport_p_no_tie_correction": nan,
    }


def _check_settings(alpha: float, rope: float, df: pd.DataFrame) -> None:
    if not isinstance(df, pd.DataFrame):
        raise LossbenchError(
            f"compare expects a pandas DataFrame (long table); got {type(df).__name__}"
        )
    if not 0.0 < float(alpha) < 1.0:
        raise LossbenchError(f"alpha must be in (0, 1); got {alpha}")
    if not (float(rope) >= 0.0 and np.isfinite(rope)):
        raise LossbenchError(f"rope must be a finite number >= 0 (score units); got {rope}")


def compare(
    df: pd.DataFrame,
    dataset_col: str = "dataset",
    method_col: str = "method",
    score_col: str = "score",
    group_by: str | Sequence[str] | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    average_over: str | None = None,
    drop_incomplete: bool = False,
    rope: float = 0.5,
    labels: Mapping[str, str] | None = None,
    paper_table: str | Path | pd.DataFrame | None = None,
    seed: int = 0,
) -> Comparison | dict[tuple, Comparison]:
    """Compare methods over datasets: ranks, Friedman, post-hoc tests, profiles, Table 4.

    `df` is long: one row per (dataset, method[, group][, replicate]). Without `group_by`
    the result is one `Comparison`; with it, a dict {tuple of group values: Comparison}.
    `baseline` defaults to the first method in display order (`labels` order, then sorted).
    `rope` is in score units (0.5 = half a percentage point for percent accuracies).
    Bad input raises `LossbenchError` with one line naming the column/row.
    """
    _check_settings(alpha, rope, df)
    groups = [group_by] if isinstance(group_by, str) else list(group_by or [])
    check_columns(df, [dataset_col, method_col, score_col, *groups]
                  + ([average_over] if average_over else []))
    clash = [g for g in groups if g in (dataset_col, method_col, score_col, average_over)]
    if clash:
        raise LossbenchError(
            f"--group-by column(s) {clash} are already used as dataset/method/score/average "
            "column; group by another column"
        )
    all_methods = df[method_col].dropna().astype(str).unique().tolist()
    order = method_order(all_methods, labels)
    colors = method_colors(order)
    shown = display_labels(order, labels)
    kwargs = dict(
        dataset_col=dataset_col, method_col=method_col, score_col=score_col, baseline=baseline,
        alpha=float(alpha), higher_is_better=bool(higher_is_better), average_over=average_over,
        drop_incomplete=drop_incomplete, rope=float(rope), order=order, colors=colors,
        labels=shown, paper_table=paper_table, seed=seed,
    )
    if not groups:
        return _compare_one(df, group={}, **kwargs)
    for g in groups:
        if df[g].isna().any():
            i = int(np.flatnonzero(df[g].isna().to_numpy())[0])
            raise LossbenchError(f"--group-by column '{g}' is empty on row {i + 2} of the CSV")
    out: dict[tuple, Comparison] = {}
    for key, part in df.groupby(groups, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        group = dict(zip(groups, key, strict=True))
        try:
            out[key] = _compare_one(part.reset_index(drop=True), group=group, **kwargs)
        except LossbenchError as exc:
            where = ", ".join(f"{k}={v}" for k, v in group.items())
            raise LossbenchError(f"group {where}: {exc}") from None
    return out


def _compare_one(
    df: pd.DataFrame, *, group: dict, dataset_col: str, method_col: str, score_col: str,
    baseline: str | None, alpha: float, higher_is_better: bool, average_over: str | None,
    drop_incomplete: bool, rope: float, order: list[str], colors: dict[str, str],
    labels: dict[str, str], paper_table: str | Path | pd.DataFrame | None, seed: int,
) -> Comparison:
    scores, dropped = block_matrix(df, dataset_col, method_col, score_col,
                                   average_over=average_over, drop_incomplete=drop_incomplete)
    methods = [m for m in order if m in scores.columns]
    scores = scores[methods]
    if baseline is None:
        baseline = methods[0]
    elif str(baseline) not in methods:
        raise LossbenchError(
            f"baseline {baseline!r} is not among the methods in column '{method_col}': "
            f"{methods} (pass --baseline with one of them)"
        )
    baseline = str(baseline)
    oriented = scores if higher_is_better else -scores
    notes: list[str] = []

    rmat = stats.rank_matrix(oriented)
    mean_rank = rmat.mean(axis=0)
    n_wins = stats.wins(oriented)
    delta = scores.sub(scores[baseline], axis=0).mean(axis=0)
    ranks = pd.DataFrame({
        "method": methods,
        "mean_rank": mean_rank[methods].to_numpy(),
        "wins": n_wins[methods].to_numpy(),
        "delta_vs_baseline": delta[methods].to_numpy(),
        "n_datasets": len(scores),
    })
    position = {m: i for i, m in enumerate(methods)}
    ranks = ranks.sort_values(["mean_rank", "method"], key=lambda c: c.map(position)
                              if c.name == "method" else c, kind="stable").reset_index(drop=True)

    table4 = pd.DataFrame({
        "method": methods,
        "wins": n_wins[methods].to_numpy(),
        "delta": delta[methods].to_numpy(),
        "mean_rank": mean_rank[methods].to_numpy(),
        # the paper's Table 4 tie convention (ties get the best rank), for the side-by-side
        "mean_rank_min": stats.rank_matrix(oriented, ties="min").mean(axis=0)[methods].to_numpy(),
    })
    if len(methods) >= stats.MIN_FRIEDMAN_METHODS:
        fried = stats.friedman(oriented)
    else:
        fried = friedman_not_applicable(len(scores), len(methods))
    q, cd = stats.nemenyi_cd(len(scores), len(methods), alpha)

    if (scores.to_numpy() < 0).any():
        profile = None
        notes.append("Performance profile skipped: it needs non-negative scores "
                     f"(column '{score_col}' has negative values).")
    else:
        profile = stats.performance_profile(scores, higher_is_better=higher_is_better)

    paper = read_paper_table(paper_table, group) if paper_table is not None else None
    if paper is not None:
        unknown = [m for m in paper.index if m not in methods]
        if unknown:
            notes.append(f"Paper table rows without results here: {', '.join(unknown)}.")

    return Comparison(
        scores=scores, ranks=ranks, rank_matrix=rmat, friedman=fried,
        conover_bh=stats.conover_bh(oriented), nemenyi_p=stats.nemenyi_p(oriented),
        nemenyi_q=q, nemenyi_cd=cd, profile=profile,
        wilcoxon_holm=stats.wilcoxon_holm(scores, baseline, higher_is_better, seed=seed),
        bayes_signed_rank=stats.bayes_signed_rank(scores, baseline, rope=rope,
                                                  higher_is_better=higher_is_better, seed=seed),
        table4=table4, paper=paper, baseline=baseline,
        labels={m: labels[m] for m in methods}, colors={m: colors[m] for m in methods},
        dropped=dropped,
        settings={"dataset_col": dataset_col, "method_col": method_col, "score_col": score_col,
                  "alpha": alpha, "higher_is_better": higher_is_better,
                  "average_over": average_over, "drop_incomplete": drop_incomplete,
                  "rope": rope, "seed": seed},
        group=group, notes=notes,
    )
