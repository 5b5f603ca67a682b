"""`lossbench datasets` on a synthetic collection: rows, formats and exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from test_data_load import make_dataset

from bench.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSBENCH_UCI121_SPLITS", raising=False)


def test_csv_lists_ok_and_missing_and_exits_0(tmp_path, capsys):
    make_dataset(tmp_path, name="trains", n1=10)
    assert main(["datasets", "--source", str(tmp_path), "--format", "csv"]) == 0
    out = capsys.readouterr()
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(out.out))}
    assert len(rows) == 121  # the whole collection is listed, absent ones as missing
    assert rows["trains"] == {
        "name": "trains",
        "n_samples": "10",
        "n_features": "3",
        "n_classes": "2",
        "status": "ok",
    }
    assert rows["iris"]["status"] == "missing"
    assert "missing from the source" in out.err and "iris" in out.err


def test_invalid_dataset_exits_2_with_reason(tmp_path, capsys):
    truth = make_dataset(tmp_path, name="trains", n1=10)
    (truth["folder"] / "trains.txt").write_text(
        (truth["folder"] / "trains.txt").read_text().replace("n_patrons1= 10", "n_patrons1= 11")
    )
    assert main(["datasets", "--source", str(tmp_path), "--format", "json"]) == 2  # bad input
    out = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(out.out)}
    assert "error: 1 dataset(s) invalid: trains" in out.err
    assert rows["trains"]["status"].startswith("invalid: ")
    assert "trains_R.dat: expected 11 data rows" in rows["trains"]["status"]


def test_bad_source_is_one_error_line(tmp_path, capsys):
    assert main(["datasets", "--source", str(tmp_path / "absent.tar.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lossbench datasets: error: source") and "\n" not in err


@pytest.mark.parametrize("layout", ["empty", "unrelated_files"])
def test_nothing_found_is_exit_2_not_success(tmp_path, capsys, layout):
    source = tmp_path / "my data"
    source.mkdir()
    if layout == "unrelated_files":
        (source / "notes.txt").write_text("hello")
        (source / "iris").mkdir()  # a folder without iris/iris.txt holds no dataset
    assert main(["datasets", "--source", str(source)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err.strip()
    assert err.startswith("lossbench datasets: error: no dataset found in source")
    assert str(source) in err and "\n" not in err
