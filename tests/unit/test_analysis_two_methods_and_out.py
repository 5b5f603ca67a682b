"""`lossbench analyze` with two methods and with a bad --out (issue 15, defects 4 and 7).

Before the fix two methods ended in scipy's "At least 3 samples must be given for Friedman
test" traceback, and --out naming an existing file in FileExistsError after all the work.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as ss

from analysis import compare, stats
from bench.cli import main
from bench.errors import LossbenchError


def _scores(methods: dict[str, float], n: int = 15, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n):
        base = rng.uniform(60, 90)
        for m, effect in methods.items():
            rows.append({"dataset": f"d{d:02d}", "method": m,
                         "score": round(base + effect + rng.normal(0, 1), 2)})
    return pd.DataFrame(rows)


@pytest.fixture
def two(tmp_path: Path) -> Path:
    path = tmp_path / "two.csv"
    _scores({"ce": 0.0, "el": 1.0}).to_csv(path, index=False)
    return path


def test_two_methods_use_wilcoxon_and_the_sign_test(two, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(two), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "Friedman needs >= 3 methods: Wilcoxon signed-rank p = " in stdout
    friedman = json.loads((out / "friedman.json").read_text())
    assert friedman["applicable"] is False and friedman["p_value"] is None
    assert friedman["n_methods"] == 2
    summary = (out / "summary.md").read_text()
    assert "The Friedman test needs >= 3 methods" in summary
    wil = pd.read_csv(out / "wilcoxon_holm.csv").iloc[0]
    scores = pd.read_csv(two).pivot(index="dataset", columns="method", values="score")
    d = scores["el"] - scores["ce"]
    assert wil["p_value"] == pytest.approx(ss.wilcoxon(d, zero_method="zsplit").pvalue)
    wins = int((d > 0).sum())
    assert (wil["sign_wins"], wil["sign_losses"]) == (wins, int((d < 0).sum()))
    assert wil["sign_p"] == pytest.approx(ss.binomtest(wins, len(d)).pvalue)


def test_one_method_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "one.csv"
    _scores({"ce": 0.0}).to_csv(path, index=False)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("lossbench analyze: error: column 'method' must hold at least 2 methods to "
                   "compare; got ['ce']")
    assert not (tmp_path / "out").exists()


def test_friedman_itself_refuses_two_methods_in_one_line():
    scores = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 2.5, 2.0]})
    with pytest.raises(LossbenchError, match=r"needs >= 3 methods, got 2"):
        stats.friedman(scores)


def test_sign_test_splits_ties_as_demsar():
    # Demšar (2006), Sec. 3.1.2: ties split evenly, one ignored when their number is odd
    d = np.array([1.0] * 9 + [-1.0] * 3 + [0.0] * 5)
    wins, losses, ties, p = stats.sign_test(d)
    assert (wins, losses, ties) == (9, 3, 5)
    assert p == pytest.approx(ss.binomtest(9 + 2, 9 + 3 + 4, 0.5).pvalue)
    assert stats.sign_test(np.zeros(4))[3] == 1.0


def test_out_naming_a_file_fails_before_the_analysis(two, tmp_path, capsys, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("mine")

    def never(*args, **kwargs):  # the comparison must not even start
        raise AssertionError("compare ran although --out is unusable")

    monkeypatch.setattr("analysis._compare.compare", never)
    assert main(["analyze", str(two), "--out", str(target)]) == 2
    assert "--out '" in capsys.readouterr().err
    assert main(["analyze", str(two), "--out", str(target / "sub")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_failed_write_leaves_the_out_folder_as_it_was(two, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ranks.csv").write_text("earlier results\n")
    from bench import io as tables  # analysis.tables writes its figures through bench.io

    real = tables.save_figure

    def full(fig, path, **kwargs):
        if Path(path).name == "cd_diagram_nemenyi.svg":  # some files are written already
            raise OSError(28, "No space left on device", str(path))
        return real(fig, path, **kwargs)

    monkeypatch.setattr(tables, "save_figure", full)
    assert main(["analyze", str(two), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lossbench analyze: error: cannot write the analysis into '{out}': "
                          "No space left on device")
    assert "~" not in err and "\n" not in err  # names the user's folder, not the staging one
    assert [p.name for p in out.iterdir()] == ["ranks.csv"]
    assert (out / "ranks.csv").read_text() == "earlier results\n"
    fresh = tmp_path / "new" / "deeper"
    assert main(["analyze", str(two), "--out", str(fresh)]) == 2
    assert not (tmp_path / "new").exists()  # folders made for the failed run are removed


def test_compare_two_methods_in_python():
    result = compare(_scores({"a": 0.0, "b": 0.5}), baseline="a")
    assert result.friedman["applicable"] is False
    assert list(result.wilcoxon_holm["method"]) == ["b"]
