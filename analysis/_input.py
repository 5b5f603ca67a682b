"""Validate a long results table and pivot it to the block design (datasets x methods).

All checks live here so every statistic downstream can assume a complete, finite,
duplicate-free matrix; each failure is one `LossbenchError` line naming the column/row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import LossbenchError


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a long results CSV, turning I/O and parse failures into one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise LossbenchError(f"results file '{path}' does not exist (expected a long CSV)")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LossbenchError(f"results file '{path}' is not a readable CSV: {first}") from None


def read_labels(path: str | Path) -> dict[str, str]:
    """Read a `method,label` CSV mapping method ids to display labels."""
    path = Path(path)
    if not path.is_file():
        raise LossbenchError(f"labels file '{path}' does not exist (expected CSV method,label)")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("method", "label") if c not in table.columns]
    if missing:
        raise LossbenchError(
            f"labels file '{path}' lacks column(s) {missing}; expected columns method,label, "
            f"got {list(table.columns)}"
        )
    dup = table["method"][table["method"].duplicated()].tolist()
    if dup:
        raise LossbenchError(f"labels file '{path}' lists method(s) {dup} more than once")
    return dict(zip(table["method"], table["label"], strict=True))


def require_columns(frame: pd.DataFrame, need: Sequence[str], source: object,
                    expected: str) -> None:
    """One line naming ``source``, the missing columns and what table was ``expected``."""
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise LossbenchError(f"{source}: missing column(s) {', '.join(missing)}; expected "
                             f"{expected}")


def check_columns(df: pd.DataFrame, columns: Sequence[str], what: str = "results") -> None:
    """Raise naming the missing columns and the ones present."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LossbenchError(
            f"{what} table lacks column(s) {missing}; it has {list(df.columns)} "
            "(choose columns with --dataset-col/--method-col/--score-col/--group-by)"
        )


def block_matrix(
    df: pd.DataFrame,
    dataset_col: str,
    method_col: str,
    score_col: str,
    average_over: str | None = None,
    drop_incomplete: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Return (scores: datasets x methods, dropped dataset names).

    Rows of one (dataset, method) cell are averaged only when `average_over` names the
    column they differ in (e.g. seed); otherwise a duplicate cell is an error, because
    silently averaging would hide a mis-specified grouping.
    """
    needed = [dataset_col, method_col, score_col] + ([average_over] if average_over else [])
    check_columns(df, needed)
    scores = pd.to_numeric(df[score_col], errors="coerce")
    bad = scores.isna() | ~np.isfinite(scores.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise LossbenchError(
            f"column '{score_col}' must hold finite numbers; row {i + 2} of the CSV "
            f"(dataset={df[dataset_col].iloc[i]!r}, method={df[method_col].iloc[i]!r}) "
            f"has {df[score_col].iloc[i]!r} ({int(bad.sum())} bad row(s) in all)"
        )
    for col in (dataset_col, method_col):
        if df[col].isna().any():
            i = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise LossbenchError(f"column '{col}' is empty on row {i + 2} of the CSV")
    long = pd.DataFrame(
        {"dataset": df[dataset_col].astype(str), "method": df[method_col].astype(str),
         "score": scores.astype(float)}
    )
    # a cell is (dataset, method), plus the replicate column when averaging over one
    keys, cell, hint = ["dataset", "method"], f"({dataset_col}, {method_col})", (
        "pass --average-over COL (e.g. seed) to average them or --group-by to separate them")
    if average_over is not None:
        long["_rep"] = df[average_over].to_numpy()
        keys, cell = [*keys, "_rep"], f"({dataset_col}, {method_col}, {average_over})"
        hint = "add the column that separates them to --group-by"
    dup = long.duplicated(keys, keep=False)
    if dup.any():
        first = long[dup].iloc[0]
        example = ", ".join(repr(first[k]) for k in keys)
        raise LossbenchError(
            f"{int(dup.sum())} rows share a {cell} cell, e.g. ({example}); {hint}"
        )
    wide = long.pivot_table(index="dataset", columns="method", values="score", aggfunc="mean",
                            sort=True)
    if average_over is not None:
        # a cell averaged over fewer replicates than the others is not comparable: treat it
        # as missing (an error, or dropped with --drop-incomplete), never average it silently
        counts = long.pivot_table(index="dataset", columns="method", values="score",
                                  aggfunc="count", sort=True).reindex_like(wide)
        expected = int(np.nanmax(counts.to_numpy(dtype=float)))
        short = counts.notna() & (counts < expected)
        if short.to_numpy().any():
            d, m = next((d, m) for d in short.index for m in short.columns if short.loc[d, m])
            if not drop_incomplete:
                raise LossbenchError(
                    f"{int(short.to_numpy().sum())} ({dataset_col}, {method_col}) cell(s) have "
                    f"fewer '{average_over}' values than the {expected} of the others, e.g. "
                    f"({d!r}, {m!r}) has {int(counts.loc[d, m])}; pass --drop-incomplete to "
                    "drop those datasets (they are reported)"
                )
            wide = wide.mask(short)
    wide = wide.apply(_snap_noise)
    wide.columns.name = None
    wide.index.name = dataset_col
    incomplete = wide.index[wide.isna().any(axis=1)].tolist()
    if incomplete and not drop_incomplete:
        name = incomplete[0]
        lacking = wide.columns[wide.loc[name].isna()].tolist()
        raise LossbenchError(
            f"{len(incomplete)} dataset(s) lack a score for some method, e.g. {name!r} lacks "
            f"{lacking} in column '{method_col}'; pass --drop-incomplete to drop them "
            "(they are reported)"
        )
    wide = wide.drop(index=incomplete)
    if wide.shape[1] < 2:
        raise LossbenchError(
            f"column '{method_col}' must hold at least 2 methods to compare; got "
            f"{list(wide.columns)}"
        )
    if wide.shape[0] < 2:
        raise LossbenchError(
            f"need at least 2 complete datasets in column '{dataset_col}'; got {wide.shape[0]}"
            + (f" after dropping {len(incomplete)} incomplete" if incomplete else "")
        )
    return wide, [str(d) for d in incomplete]


def _snap_noise(column: pd.Series) -> pd.Series:
    """Round to 12 significant digits so averages that are equal on paper tie exactly."""
    scale = float(np.nanmax(np.abs(column.to_numpy(dtype=float)), initial=0.0))
    if scale == 0.0 or not np.isfinite(scale):
        return column
    return column.round(12 - int(np.ceil(np.log10(scale))))


def read_paper_table(
    source: str | Path | pd.DataFrame, group: dict[str, object] | None = None
) -> pd.DataFrame:
    """Read reference Table 4 numbers (`method,wins,delta,mean_rank`), indexed by method.

    A `group` column is allowed (the packaged analysis/paper_tables/mixing_table4.csv holds
    both architectures); its rows are then narrowed to the analysed group's value when that
    is unambiguous.
    """
    if isinstance(source, pd.DataFrame):
        path, table = "<DataFrame>", source.copy()
    else:
        path = Path(source)
        if not path.is_file():
            raise LossbenchError(
                f"paper table '{path}' does not exist (expected CSV method,wins,delta,mean_rank)"
            )
        table = pd.read_csv(path)
    need = ["method", "wins", "delta", "mean_rank"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise LossbenchError(
            f"paper table '{path}' lacks column(s) {missing}; expected columns {need}, "
            f"got {list(table.columns)}"
        )
    table["method"] = table["method"].astype(str)
    if "group" in table.columns and table["method"].duplicated().any() and group:
        values = {str(v) for v in group.values()}
        table = table[table["group"].astype(str).isin(values)]
    dup = table["method"][table["method"].duplicated()].unique().tolist()
    if dup:
        raise LossbenchError(
            f"paper table '{path}' lists method(s) {dup} more than once; give one row per "
            "method (or a 'group' column whose values match --group-by)"
        )
    for col in need[1:]:
        values = pd.to_numeric(table[col], errors="coerce")
        if values.isna().any():
            i = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise LossbenchError(
                f"paper table '{path}': column '{col}' must be numeric; row {i + 2} has "
                f"{table[col].iloc[i]!r}"
            )
        table[col] = values
    return table.set_index("method")[need[1:]]
