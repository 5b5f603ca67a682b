"""The mixing paper's motivating example (Introduction): which test samples a model still gets
right later, by how sure it was earlier.

At the early epoch the test set splits into correct / wrong with p_y > threshold / wrong with
p_y < threshold; each bucket's count of samples correct at the late epoch is reported (paper:
ResNet32, CIFAR-100, epochs 70 and 90, threshold 0.2: 6,766 / 611 / 2,623 -> 95.58 % / 38.46 % /
3.35 %). Reads the per-sample prediction files the torch trainer writes
(``--save-predictions-at``: index, y, p_y, argmax, correct).
"""

from __future__ import annotations

import pandas as pd

from bench.errors import LossbenchError

BUCKETS = ("correct", "wrong_py_above", "wrong_py_below")


def bucket_table(early: pd.DataFrame, late: pd.DataFrame, threshold: float = 0.2) -> pd.DataFrame:
    """Per bucket at the early epoch: its size, how many are correct later, and the percent."""
    need = {"index", "p_y", "correct"}
    for name, frame in (("early", early), ("late", late)):
        if not need <= set(frame.columns):
            raise LossbenchError(f"{name} predictions: expected columns {sorted(need)}")
    merged = early.merge(late[["index", "correct"]], on="index", suffixes=("", "_late"),
                         validate="one_to_one")
    if len(merged) != len(early) or len(early) != len(late):
        raise LossbenchError("predictions: the two epochs do not cover the same test samples")
    wrong = merged["correct"] == 0
    masks = {"correct": ~wrong, "wrong_py_above": wrong & (merged["p_y"] > threshold),
             "wrong_py_below": wrong & (merged["p_y"] <= threshold)}
    rows = []
    for bucket in BUCKETS:
        part = merged[masks[bucket]]
        n_late = int(part["correct_late"].sum())
        rows.append({"bucket": bucket, "threshold": threshold, "n_early": len(part),
                     "n_correct_late": n_late,
                     "pct": round(100 * n_late / len(part), 2) if len(part) else float("nan")})
    return pd.DataFrame(rows)
