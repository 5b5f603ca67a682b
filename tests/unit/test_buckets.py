"""The motivating example's buckets from prediction files (analysis.buckets)."""

import pandas as pd
import pytest

from analysis.buckets import bucket_table
from bench.cli import main
from bench.errors import LossbenchError


def test_buckets_count_later_correct_samples_by_earlier_confidence(tmp_path):
    early = pd.DataFrame({"index": range(6), "y": 0, "p_y": [0.9, 0.8, 0.3, 0.25, 0.1, 0.05],
                          "argmax": [0, 0, 1, 1, 1, 1], "correct": [1, 1, 0, 0, 0, 0]})
    late = early.assign(correct=[1, 0, 1, 0, 0, 1]).sample(frac=1, random_state=0)
    table = bucket_table(early, late).set_index("bucket")
    assert table.loc["correct", ["n_early", "n_correct_late"]].tolist() == [2, 1]
    assert table.loc["wrong_py_above", ["n_early", "n_correct_late"]].tolist() == [2, 1]
    assert table.loc["wrong_py_below", ["n_early", "n_correct_late", "pct"]].tolist() == \
        [2, 1, 50.0]
    early.to_csv(tmp_path / "e.csv", index=False)
    late.to_csv(tmp_path / "l.csv", index=False)
    assert main(["buckets", "--early", str(tmp_path / "e.csv"), "--late",
                 str(tmp_path / "l.csv"), "--out", str(tmp_path / "b.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "b.csv")) == 3
    with pytest.raises(LossbenchError, match="same test samples"):
        bucket_table(early, late.iloc[:4])


def test_buckets_find_a_runs_prediction_files_by_epoch(tmp_path, capsys):
    folder = tmp_path / "predictions"
    folder.mkdir()
    rows = pd.DataFrame({"index": [0, 1], "y": [0, 1], "p_y": [0.9, 0.1], "argmax": [0, 0],
                         "correct": [1, 0]})
    rows.to_csv(folder / "0123abcd-epoch70.csv.gz", index=False)
    rows.assign(correct=[1, 1]).to_csv(folder / "0123abcd-epoch90.csv.gz", index=False)
    out = tmp_path / "b.csv"
    assert main(["buckets", "--predictions-dir", str(folder), "--early", "70", "--late", "90",
                 "--out", str(out)]) == 0
    assert pd.read_csv(out).set_index("bucket").loc["wrong_py_below", "n_correct_late"] == 1
    assert main(["buckets", "--predictions-dir", str(folder), "--early", "60", "--late", "90",
                 "--out", str(out)]) == 2
    assert "expected one *-epoch60.csv.gz" in capsys.readouterr().err
