"""Job order: bigger datasets get higher Snakemake priorities (started first), from the real
availability table; absent tables or datasets are neutral."""

from __future__ import annotations

import math
from pathlib import Path

from bench.schedule import size_priority

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "results" / "uci" / "datasets.csv"  # committed by the pipeline


def test_bigger_datasets_come_first_on_the_real_table():
    order = ["iris", "abalone", "letter", "adult"]  # 150x4, 4177x8, 20000x16, 48842x14
    priorities = [size_priority(TABLE, d) for d in order]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(order)
    assert priorities[0] == round(10 * math.log10(1 + 150 * 5))


def test_absent_table_or_dataset_is_neutral(tmp_path):
    assert size_priority(tmp_path / "none.csv", "iris") == 0
    assert size_priority(TABLE, "cifar10") == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("name,n_samples,n_features\niris,many,4\n")
    assert size_priority(bad, "iris") == 0
