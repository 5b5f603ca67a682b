"""The Women's Clothing E-Commerce Reviews CSV (Agarap 2018; the mixing paper's Table 3 data).

The public file (Kaggle, 23,486 rows) has an unnamed index column and ``Clothing ID, Age,
Title, Review Text, Rating, Recommended IND, Positive Feedback Count, Division Name,
Department Name, Class Name``. The task is "predict the rating 1-5" from "an item's review
comment" (Battash et al. 2022, Sec. "LSTM multi-class classification"), so only ``Review Text``
is read (not ``Title``) and ``y = Rating - 1``. Rows without review text are dropped and
counted (``meta["n_dropped_no_text"]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import LossbenchError

FILE_NAME = "Womens Clothing E-Commerce Reviews.csv"
EXPECTED = (f"the Women's Clothing E-Commerce Reviews CSV ({FILE_NAME!r}, columns 'Review Text' "
            "and 'Rating'; .csv, .csv.gz or .zip), or a folder holding it")
TEXT, RATING = "Review Text", "Rating"
RATINGS = (1, 2, 3, 4, 5)
CLASS_NAMES = [str(r) for r in RATINGS]


def csv_file(path: Path) -> Path:
    """The CSV itself, or the one in a folder (by its published name, else the only .csv)."""
    if not path.is_dir():
        return path
    if (path / FILE_NAME).is_file():
        return path / FILE_NAME
    found = sorted(path.glob("*.csv"))
    if len(found) != 1:
        raise LossbenchError(f"{path}: expected {FILE_NAME!r} or exactly one .csv in the folder; "
                             f"found {len(found)} .csv files")
    return found[0]


def read(path: Path) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """(review texts, int64 labels 0..4, counts) of the rows that have text."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={TEXT: "string"}, low_memory=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise LossbenchError(f"{path}: not a readable CSV ({first}); expected {EXPECTED}"
                             ) from None
    missing = [c for c in (TEXT, RATING) if c not in frame.columns]
    if missing:
        raise LossbenchError(f"{path}: no column {missing[0]!r} (columns: "
                             f"{', '.join(map(str, frame.columns))}); expected {EXPECTED}")
    rating = pd.to_numeric(frame[RATING], errors="coerce")
    bad = ~rating.isin(RATINGS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LossbenchError(f"{path}: data row {row}: Rating {frame[RATING].iloc[row]} is not "
                             f"one of {', '.join(CLASS_NAMES)}")
    text = frame[TEXT]
    has_text = (text.notna() & (text.fillna("").str.strip() != "")).to_numpy(dtype=bool)
    if not has_text.any():
        raise LossbenchError(f"{path}: column {TEXT!r} is empty in all {len(frame)} rows; "
                             f"expected {EXPECTED}")
    texts = [str(t) for t in text[has_text]]
    y = rating.to_numpy()[has_text].astype(np.int64) - 1
    return texts, y, {"n_rows": len(frame), "n_dropped_no_text": int((~has_text).sum())}
