"""`analysis.compare` and `lossbench analyze`: outputs, layout, ordering and every bad input.

Synthetic long tables shaped like the pipeline's scores.csv (dataset, arch, loss, seed,
test_acc_pct, ...); no data files.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import compare
from bench.cli import main
from bench.errors import LossbenchError

IDS = ["ce", "el", "focal", "ce_el_0to05"]
LABELS = {"ce": "CE", "el": "EL", "focal": "Focal", "ce_el_0to05": "CE→EL"}
EFFECT = {"ce": 0.0, "el": -3.0, "focal": -1.0, "ce_el_0to05": 0.5}
OUTPUTS = ["ranks.csv", "friedman.json", "conover_bh.csv", "cd_diagram.png", "cd_diagram.svg",
           "cd_diagram_nemenyi.png", "cd_diagram_nemenyi.svg", "performance_profile.csv",
           "performance_profile.png", "performance_profile.svg", "wilcoxon_holm.csv",
           "bayes_signed_rank.csv", "table4.md", "table4.csv", "summary.md"]


def scores_table(n_datasets=12, seeds=(0, 1), archs=("linear",), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for arch in archs:
        for d in range(n_datasets):
            base = rng.uniform(50, 95)
            for s in seeds:
                for loss in IDS:
                    acc = float(np.clip(base + EFFECT[loss] + rng.normal(0, 0.5), 0, 100))
                    rows.append({"dataset": f"ds{d:02d}", "arch": arch, "loss": loss, "seed": s,
                                 "n_folds": 1, "val_acc": acc / 100, "test_acc": acc / 100,
                                 "test_acc_pct": acc, "diverged": False})
    return pd.DataFrame(rows)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    scores = tmp_path / "scores.csv"
    scores_table().to_csv(scores, index=False)
    labels = tmp_path / "losses.csv"
    # configured order differs from alphabetical: figures/tables must follow it
    pd.DataFrame({"method": list(LABELS), "label": list(LABELS.values())}).to_csv(
        labels, index=False)
    paper = tmp_path / "paper_table4.csv"
    pd.DataFrame({"method": IDS, "wins": [33, 33, 26, 48], "delta": [0.0, -2.71, -0.56, 0.30],
                  "mean_rank": [2.59, 3.25, 3.13, 2.12]}).to_csv(paper, index=False)
    return {"scores": scores, "labels": labels, "paper": paper, "tmp": tmp_path}


def analyze(*args: str) -> int:
    return main(["analyze", *map(str, args)])


# ---------------------------------------------------------------- happy path


def test_pipeline_invocation_writes_every_output(files, capsys):
    out = files["tmp"] / "out"
    rc = analyze(files["scores"], "--out", out, "--dataset-col", "dataset", "--method-col",
                 "loss", "--score-col", "test_acc_pct", "--baseline", "ce", "--average-over",
                 "seed", "--labels", files["labels"], "--paper-table", files["paper"])
    assert rc == 0, capsys.readouterr().err
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*")), "temp files left behind"
    assert (out / "cd_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "cd_diagram.svg").read_text().lstrip().startswith("<?xml")

    # the report's contract: method ids, exact columns, delta in score units
    table4 = pd.read_csv(out / "table4.csv")
    assert list(table4.columns) == ["method", "wins", "delta", "mean_rank", "mean_rank_min"]
    assert (table4["mean_rank_min"] <= table4["mean_rank"] + 1e-12).all()
    assert list(table4["method"]) == IDS  # configured order
    df = scores_table()
    wide = df.groupby(["dataset", "loss"])["test_acc_pct"].mean().unstack()
    expected_delta = (wide.sub(wide["ce"], axis=0)).mean()
    np.testing.assert_allclose(table4.set_index("method")["delta"], expected_delta[IDS],
                               rtol=1e-9, atol=1e-9)
    friedman = json.loads((out / "friedman.json").read_text())
    assert {"n_datasets", "n_methods", "chi2", "p_value", "iman_davenport_F",
            "iman_davenport_p"} <= set(friedman)
    assert (friedman["n_datasets"], friedman["n_methods"]) == (12, 4)

    ranks = pd.read_csv(out / "ranks.csv")
    assert list(ranks.columns) == ["method", "mean_rank", "wins", "delta_vs_baseline",
                                   "n_datasets"]
    assert ranks["mean_rank"].is_monotonic_increasing
    assert ranks["mean_rank"].sum() == pytest.approx(4 * 5 / 2)  # k(k+1)/2
    conover = pd.read_csv(out / "conover_bh.csv", index_col="method")
    assert list(conover.index) == IDS == list(conover.columns)

    md = (out / "table4.md").read_text()
    assert "| CE→EL | " in md and "| 48 |" in md and "+0.30" in md  # ours beside the paper's
    summary = (out / "summary.md").read_text()
    for fig in ("cd_diagram.png", "cd_diagram_nemenyi.png", "performance_profile.png"):
        assert f"]({fig})" in summary
    assert "No dataset was dropped." in summary
    assert "12 datasets" in capsys.readouterr().out


def test_compare_api_orientation_and_labels():
    df = scores_table(seeds=(0,))
    res = compare(df, method_col="loss", score_col="test_acc_pct", baseline="ce",
                  labels=LABELS)
    assert res.methods == IDS and res.labels["ce_el_0to05"] == "CE→EL"
    best = res.ranks.iloc[0]["method"]
    assert best == "ce_el_0to05"  # +0.5 on every dataset (noise 0.5)
    # lower-is-better on error = 100 - accuracy gives the same ranks and opposite deltas
    err = df.assign(err=100 - df["test_acc_pct"])
    low = compare(err, method_col="loss", score_col="err", baseline="ce",
                  higher_is_better=False, labels=LABELS)
    pd.testing.assert_frame_equal(low.rank_matrix, res.rank_matrix)
    np.testing.assert_allclose(low.table4["delta"], -res.table4["delta"], atol=1e-9)
    assert low.friedman["chi2"] == pytest.approx(res.friedman["chi2"])
    # colours follow the configured order, so they are the same in every group and figure
    assert low.colors == res.colors
    # default baseline: first method in display order
    assert compare(df, method_col="loss", score_col="test_acc_pct", labels=LABELS).baseline == "ce"


def test_group_by_writes_one_folder_per_value(files):
    path = files["tmp"] / "all.csv"
    scores_table(archs=("linear", "mlp")).to_csv(path, index=False)
    out = files["tmp"] / "grouped"
    assert analyze(path, "--out", out, "--method-col", "loss", "--score-col", "test_acc_pct",
                   "--group-by", "arch", "--average-over", "seed", "--labels",
                   files["labels"]) == 0
    for arch in ("linear", "mlp"):
        assert (out / f"arch={arch}" / "table4.csv").is_file()
        assert (out / f"arch={arch}" / "cd_diagram_nemenyi.svg").is_file()
    # nested for several columns
    out2 = files["tmp"] / "nested"
    assert analyze(path, "--out", out2, "--method-col", "loss", "--score-col", "test_acc_pct",
                   "--group-by", "arch,seed") == 0
    assert (out2 / "arch=mlp" / "seed=1" / "summary.md").is_file()
    # an index of the group folders, with the numbers of each group's own analysis
    index = pd.read_csv(out2 / "groups.csv")
    assert list(index["folder"]) == [f"arch={a}/seed={s}" for a in ("linear", "mlp")
                                     for s in (0, 1)]
    for row in index.itertuples():
        friedman = json.loads((out2 / row.folder / "friedman.json").read_text())
        assert row.friedman_p == pytest.approx(friedman["p_value"])
        assert row.n_datasets == friedman["n_datasets"]
    res = compare(pd.read_csv(path), method_col="loss", score_col="test_acc_pct",
                  group_by="arch", average_over="seed")
    assert set(res) == {("linear",), ("mlp",)} and res[("mlp",)].group == {"arch": "mlp"}


def test_paper_table_with_group_column_is_narrowed_to_the_group(files):
    paper = files["tmp"] / "paper_both.csv"
    pd.DataFrame({"method": IDS * 2, "group": ["linear"] * 4 + ["mlp"] * 4,
                  "wins": range(8), "delta": 0.0, "mean_rank": 2.5}).to_csv(paper, index=False)
    df = scores_table(archs=("linear", "mlp"), seeds=(0,))
    res = compare(df, method_col="loss", score_col="test_acc_pct", group_by="arch",
                  paper_table=paper)
    assert res[("mlp",)].paper.loc["ce", "wins"] == 4
    with pytest.raises(LossbenchError, match="more than once"):
        compare(df[df["arch"] == "mlp"], method_col="loss", score_col="test_acc_pct",
                paper_table=paper)


def test_zero_and_full_scores_work_in_the_profile():
    df = scores_table(seeds=(0,))
    df.loc[df["dataset"] == "ds00", "test_acc_pct"] = 100.0
    df.loc[df["dataset"] == "ds01", "test_acc_pct"] = 0.0
    df.loc[(df["dataset"] == "ds02") & (df["loss"] == "el"), "test_acc_pct"] = 0.0
    res = compare(df, method_col="loss", score_col="test_acc_pct", baseline="ce")
    prof = res.profile
    assert prof.index[0] == 0.0 and prof.loc[0.0].eq(1.0).all()
    assert np.isfinite(prof.to_numpy()).all()


def test_drop_incomplete_reports_dropped_datasets(files, capsys):
    df = scores_table(seeds=(0,))
    df = df[~((df["dataset"] == "ds03") & (df["loss"] == "focal"))]
    path = files["tmp"] / "holes.csv"
    df.to_csv(path, index=False)
    out = files["tmp"] / "dropped"
    assert analyze(path, "--out", out, "--method-col", "loss", "--score-col", "test_acc_pct",
                   "--drop-incomplete") == 0
    assert "ds03" in (out / "summary.md").read_text()
    assert json.loads((out / "friedman.json").read_text())["n_datasets"] == 11
    assert "dropped 1" in capsys.readouterr().out


def test_analysis_never_imports_torch_or_the_engine():
    code = ("import sys, analysis, analysis._compare, analysis.tables, analysis.figures, "
            "analysis._cli; analysis.compare; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('bench.train')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- bad input


def _bad(df: pd.DataFrame, tmp: Path, *extra: str) -> str:
    path = tmp / "bad.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("mutate", "extra", "message"),
    [
        (lambda d: d.drop(columns="test_acc_pct"), (), r"lacks column\(s\) \['test_acc_pct'\]"),
        (lambda d: d.assign(test_acc_pct=d["test_acc_pct"].astype(object).where(
            d.index != 5, "n/a")), (), r"column 'test_acc_pct' must hold finite numbers; row 7"),
        (lambda d: d.assign(test_acc_pct=d["test_acc_pct"].where(d.index != 0)), (),
         r"row 2 .*nan"),
        (lambda d: d, (), r"rows share a \(dataset, loss\) cell.*--average-over"),
        (lambda d: d[~((d["dataset"] == "ds01") & (d["loss"] == "el"))], ("--average-over",
         "seed"), r"'ds01' lacks \['el'\].*--drop-incomplete"),
        (lambda d: d[~((d["dataset"] == "ds01") & (d["loss"] == "el") & (d["seed"] == 1))],
         ("--average-over", "seed"), r"fewer 'seed' values than the 2.*\('ds01', 'el'\)"),
        (lambda d: d[d["loss"] == "ce"], ("--average-over", "seed"), r"at least 2 methods"),
        (lambda d: d[d["dataset"] == "ds00"], ("--average-over", "seed"),
         r"at least 2 complete datasets"),
        (lambda d: d, ("--average-over", "seed", "--baseline", "cee"),
         r"baseline 'cee' is not among the methods"),
        (lambda d: d, ("--average-over", "nope"), r"lacks column\(s\) \['nope'\]"),
        (lambda d: d, ("--average-over", "seed", "--group-by", "loss"), r"already used"),
        (lambda d: d, ("--average-over", "seed", "--alpha", "1.5"), r"alpha must be in \(0, 1\)"),
        (lambda d: d, ("--average-over", "seed", "--rope", "-1"), r"rope must be"),
    ],
    ids=["missing-column", "non-numeric", "nan", "duplicates", "incomplete",
         "unequal-replicates", "one-method", "one-dataset", "unknown-baseline",
         "missing-average-col", "group-by-clash", "alpha", "rope"],
)
def test_bad_input_exits_2_with_one_line(files, capsys, mutate, extra, message):
    path = _bad(mutate(scores_table()), files["tmp"])
    rc = analyze(path, "--out", files["tmp"] / "o", "--method-col", "loss", "--score-col",
                 "test_acc_pct", *extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("lossbench analyze: error: ") and err.count("\n") == 1, err
    import re

    assert re.search(message, err), err


def test_bad_side_files_exit_2(files, capsys):
    common = [files["scores"], "--out", files["tmp"] / "o", "--method-col", "loss",
              "--score-col", "test_acc_pct", "--average-over", "seed"]
    assert analyze(files["tmp"] / "missing.csv", "--out", files["tmp"] / "o") == 2
    assert "does not exist" in capsys.readouterr().err
    bad_labels = files["tmp"] / "labels_bad.csv"
    pd.DataFrame({"loss": IDS}).to_csv(bad_labels, index=False)
    assert analyze(*common, "--labels", bad_labels) == 2
    assert "lacks column(s) ['method', 'label']" in capsys.readouterr().err
    bad_paper = files["tmp"] / "paper_bad.csv"
    pd.DataFrame({"method": IDS, "wins": 1}).to_csv(bad_paper, index=False)
    assert analyze(*common, "--paper-table", bad_paper) == 2
    assert "lacks column(s) ['delta', 'mean_rank']" in capsys.readouterr().err
    empty = files["tmp"] / "empty.csv"
    empty.write_text("")
    assert analyze(empty, "--out", files["tmp"] / "o") == 2
    assert "not a readable CSV" in capsys.readouterr().err


def test_group_errors_name_the_group():
    df = scores_table(archs=("linear", "mlp"), seeds=(0,))
    df = df[~((df["arch"] == "mlp") & (df["dataset"] == "ds02") & (df["loss"] == "ce"))]
    with pytest.raises(LossbenchError, match=r"^group arch=mlp: 1 dataset\(s\) lack"):
        compare(df, method_col="loss", score_col="test_acc_pct", group_by="arch")


def test_negative_scores_skip_only_the_profile(tmp_path):
    df = scores_table(seeds=(0,)).assign(delta=lambda d: d["test_acc_pct"] - 80)
    res = compare(df, method_col="loss", score_col="delta", baseline="ce")
    assert res.profile is None and "non-negative" in res.notes[0]
    from analysis import write_outputs

    write_outputs(res, tmp_path)
    assert (tmp_path / "cd_diagram.png").is_file()
    assert not (tmp_path / "performance_profile.png").exists()
    assert "non-negative" in (tmp_path / "summary.md").read_text()


def test_min_tie_ranks_on_a_hand_made_table():
    """Ties get the best rank (the paper's Table 4 convention) next to averaged ranks."""
    df = pd.DataFrame({"dataset": ["d1"] * 3 + ["d2"] * 3, "method": ["a", "b", "c"] * 2,
                       "score": [0.9, 0.9, 0.5, 0.7, 0.8, 0.8]})
    t4 = compare(df, baseline="a").table4.set_index("method")
    # d1: a, b tie for first (avg 1.5, min 1), c 3; d2: b, c tie (avg 1.5, min 1), a 3
    assert t4["mean_rank"].to_dict() == {"a": 2.25, "b": 1.5, "c": 2.25}
    assert t4["mean_rank_min"].to_dict() == {"a": 2.0, "b": 1.0, "c": 2.0}
