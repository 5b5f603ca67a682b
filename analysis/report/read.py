"""Reading one study's results folder (CONTRIBUTING.md layout) into plain objects.

``<study>/datasets.csv``, ``<study>/losses.csv`` (display labels) and per protocol
``<study>/<protocol>/{settings.json,timings.csv,scores.csv}`` and
``<study>/<protocol>/analysis/<arch>/<seedN|mean>/{table4.csv,friedman.json,conover_bh.csv,
*.png}``.
Missing files become None (the renderer says they are missing); malformed ones stop with one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

import pandas as pd

from analysis._input import require_columns
from bench.errors import LossbenchError

TABLE_COLUMNS = ("method", "wins", "delta", "mean_rank")
PAPER_COLUMNS = ("method", "group", "wins", "delta", "mean_rank")


@dataclass
class Selection:
    """Analysis outputs of one protocol x arch x (seedN | mean) folder."""

    path: Path
    table: pd.DataFrame | None  # index = loss id; columns wins, delta, mean_rank
    friedman: dict | None
    # Conover-Friedman p-values, BH-adjusted (k x k, index and columns = loss ids), if written
    conover: pd.DataFrame | None = None
    # a grouped analysis (groups.csv, e.g. one group per noise level): its index and the
    # outputs of each group folder, keyed by the folder (``noise_kind=uniform/noise_rate=0.4``)
    groups: pd.DataFrame | None = None
    levels: dict[str, Selection] = field(default_factory=dict)
    # a study's `metrics:` (top-k, close-enough): ``metrics/``, grouped by metric like levels
    metrics: Selection | None = None


@dataclass
class Protocol:
    name: str
    path: Path
    settings: dict
    timings: pd.DataFrame | None
    scores: pd.DataFrame | None
    # arch -> selection name ("mean", "seed0", ...) -> outputs
    analysis: dict[str, dict[str, Selection]] = field(default_factory=dict)

    def selection_names(self) -> list[str]:
        """``mean`` first (what verdicts are decided on), then the seeds in numeric order."""
        names = {s for sels in self.analysis.values() for s in sels}
        seeds = sorted((s for s in names if s != "mean"), key=lambda s: (len(s), s))
        return (["mean"] if "mean" in names else []) + seeds


@dataclass
class StudyResults:
    """Everything a study's results folder holds."""

    path: Path
    datasets: pd.DataFrame | None
    protocols: list[Protocol]
    labels: dict[str, str]  # loss id -> display label, in display order


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LossbenchError(f"{path}: not valid JSON ({exc})") from exc


def read_labels(path: Path) -> dict[str, str]:
    labels = _read_csv(path)
    if labels is None or not {"method", "label"} <= set(labels.columns):
        return {}
    return dict(zip(labels["method"], labels["label"], strict=True))


def read_table4(path: Path, labels: dict[str, str]) -> pd.DataFrame | None:
    """Our Table 4 indexed by loss id (a table keyed by display label is mapped back)."""
    table = _read_csv(path)
    if table is None:
        return None
    require_columns(table, TABLE_COLUMNS, path, str(list(TABLE_COLUMNS)))
    by_label = {label: loss_id for loss_id, label in labels.items()}
    table["method"] = [by_label.get(m, m) for m in table["method"]]
    optional = [c for c in ("mean_rank_min",) if c in table.columns]
    return table.set_index("method")[list(TABLE_COLUMNS[1:]) + optional]


def read_conover(path: Path, labels: dict[str, str]) -> pd.DataFrame | None:
    """The k x k Conover-BH matrix (conover_bh.csv) with rows and columns as loss ids."""
    matrix = _read_csv(path)
    if matrix is None:
        return None
    if "method" not in matrix.columns:
        raise LossbenchError(f"{path}: no 'method' column; expected the Conover-BH matrix "
                             "written by `lossbench analyze`")
    by_label = {label: loss_id for loss_id, label in labels.items()}
    matrix = matrix.set_index("method").rename(index=lambda m: by_label.get(m, m),
                                               columns=lambda m: by_label.get(m, m))
    return matrix.rename_axis(None)


def read_paper_table(source: str | os.PathLike | Traversable) -> pd.DataFrame:
    """A paper's table (method,group,wins,delta,mean_rank) from a path or package resource."""
    source = source if hasattr(source, "open") else Path(source)
    if not source.is_file():
        raise LossbenchError(f"{source}: no such file; expected the paper's table "
                             f"({','.join(PAPER_COLUMNS)})")
    with source.open("rb") as handle:
        paper = pd.read_csv(handle, dtype={"group": str})  # groups are folder names
    if not set(PAPER_COLUMNS) <= set(paper.columns):
        raise LossbenchError(f"{source}: expected columns {sorted(PAPER_COLUMNS)}, "
                             f"got {list(paper.columns)}")
    return paper


def friedman_p(friedman: dict | None) -> float | None:
    """The p-value, or None when there is none (e.g. ``"applicable": false``: two methods)."""
    if not friedman:
        return None
    for key in ("p_value", "pvalue", "p"):
        if friedman.get(key) is not None:
            return float(friedman[key])
    return None


def read_protocol(path: Path, labels: dict[str, str]) -> Protocol:
    protocol = Protocol(
        name=path.name,
        path=path,
        settings=read_json(path / "settings.json") or {},
        timings=_read_csv(path / "timings.csv"),
        scores=_read_csv(path / "scores.csv"),
    )
    analysis = path / "analysis"
    if analysis.is_dir():
        for arch_dir in sorted(p for p in analysis.iterdir() if p.is_dir()):
            protocol.analysis[arch_dir.name] = {
                sel.name: read_selection(sel, labels)
                for sel in sorted(p for p in arch_dir.iterdir() if p.is_dir())
            }
    return protocol


def read_selection(path: Path, labels: dict[str, str]) -> Selection:
    """One analysis folder; a grouped one (groups.csv) with each group folder it lists."""
    selection = Selection(path=path, table=read_table4(path / "table4.csv", labels),
                          friedman=read_json(path / "friedman.json"),
                          conover=read_conover(path / "conover_bh.csv", labels),
                          groups=_read_csv(path / "groups.csv"))
    if selection.groups is not None:
        if "folder" not in selection.groups.columns:
            raise LossbenchError(f"{path / 'groups.csv'}: no 'folder' column; expected the "
                                 "index written by `lossbench analyze --group-by`")
        selection.levels = {folder: read_selection(path / folder, labels)
                            for folder in selection.groups["folder"]}
    if (path / "metrics" / "groups.csv").is_file():
        selection.metrics = read_selection(path / "metrics", labels)
    return selection


def read_study(path: Path, primary_protocol: str | None = None) -> StudyResults:
    """A study folder (e.g. ``results/uci``); the primary protocol is listed first."""
    labels = read_labels(path / "losses.csv")
    protocols = [
        read_protocol(p, labels)
        for p in sorted(path.iterdir())
        if p.is_dir() and ((p / "scores.csv").is_file() or (p / "analysis").is_dir())
    ]
    protocols.sort(key=lambda p: (p.name != primary_protocol, p.name))
    return StudyResults(path, _read_csv(path / "datasets.csv"), protocols, labels)
