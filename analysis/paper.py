"""The papers' published numbers, so a report can put "the paper's value" beside ours.

Each table of analysis/paper_tables/ (README.md there gives paper, table, section and
extraction doubts) ships as package data and is read through importlib.resources, so an
installed wheel finds it without the repository.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from bench.errors import LossbenchError

_PACKAGE = "analysis.paper_tables"


def list_paper_tables() -> list[str]:
    """Names accepted by `paper_table` (the CSV file names without `.csv`), sorted."""
    folder = resources.files(_PACKAGE)
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv"))


def paper_table(name: str) -> pd.DataFrame:
    """One transcribed table, e.g. ``paper_table("mixing_table1")``: a long DataFrame.

    Values are as printed in the paper (percent accuracy unless the table says otherwise);
    cells that could not be read are empty, with a `note` saying why.
    """
    known = list_paper_tables()
    stem = name[:-4] if isinstance(name, str) and name.endswith(".csv") else name
    if stem not in known:
        raise LossbenchError(
            f"paper_table: unknown table {name!r}. Known tables: {', '.join(known)}"
        )
    with resources.files(_PACKAGE).joinpath(f"{stem}.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)
