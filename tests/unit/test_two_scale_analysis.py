"""Two-scale study statistics (issue 14): the paired contrasts behind its claims, the verdicts of
the real claims files, the per-metric (top-k, close-enough) analyses and their report table.

Synthetic collected summaries shaped like the two-scale studies (dataset, arch, loss, seed,
fold, train_acc, val_acc, test_acc, test_top2, test_acc_at_0.05; no noise columns) with each
claim's effect built in; no data files, no training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis.collect import fold_average
from analysis.paired import metric_blocks, paired_tests
from analysis.report import render
from analysis.report.claims import Verdict, load_study, verdicts
from analysis.select import metrics_long, select_scores
from bench.cli import main
from bench.errors import LossbenchError

REPO = Path(__file__).resolve().parents[2]
CLAIMS = REPO / "analysis" / "claims"
STUDIES = REPO / "config" / "studies"

ONE, TWO, SEP = "one_scale", "two_scale(eta=0.01)", "two_scale_sep(eta=0.01)"
ETA = {e: f"two_scale(eta={e})" for e in ("0.1", "1.0", "10.0", "100.0")}
FIXED = [f"two_scale_fixed(eta={e})" for e in ("0.01", "0.1", "1.0")]
LOSSES = ["ce", ONE, TWO, *ETA.values(), *FIXED, SEP]
METRICS = ("train_acc", "test_acc", "test_top2", "test_acc_at_0.05")
# effect (points) over one_scale on each of METRICS. two_scale(eta=0.01): a large train gain, a
# small test gain, larger top-2 and close-enough gains; eta >= 1 behaves as one_scale; fixed
# scales fall behind; separation sits between one_scale and two_scale(eta=0.01)
EFFECT = {
    "ce": (0.0, 0.0, 0.0, 0.0),
    ONE: (0.0, 0.0, 0.0, 0.0),
    TWO: (6.0, 1.5, 4.0, 5.0),
    ETA["0.1"]: (3.0, 1.0, 2.0, 2.0),
    ETA["1.0"]: (0.0, 0.0, 0.0, 0.0),
    ETA["10.0"]: (0.0, 0.0, 0.0, 0.0),
    ETA["100.0"]: (0.0, 0.0, 0.0, 0.0),
    **{f: (-2.0, -3.0, -2.0, -2.0) for f in FIXED},
    SEP: (3.0, 0.5, 1.0, 1.0),
}
# offset (points) of each metric over the dataset's base accuracy
OFFSET = {"train_acc": 10.0, "test_acc": 0.0, "test_top2": 15.0, "test_acc_at_0.05": 5.0}
TWO_CLASS = 3  # the first datasets have two classes: top-2 undefined (left empty) there


def _summary(n_datasets: int = 12, seeds: tuple[int, ...] = (0, 1),
             archs: tuple[str, ...] = ("linear", "mlp"), folds: tuple[int, ...] = (0,),
             two_class: int = TWO_CLASS, rng_seed: int = 0) -> pd.DataFrame:
    """A collected two-scale summary (accuracies as fractions), each cell with N(0, 0.3)
    points of noise per metric."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for d in range(n_datasets):
        base = 50.0 + 2 * d
        for arch in archs:
            for loss in LOSSES:
                for seed in seeds:
                    for fold in folds:
                        row = {"dataset": f"d{d:02d}", "arch": arch, "loss": loss,
                               "seed": seed, "fold": fold}
                        for metric, effect in zip(METRICS, EFFECT[loss], strict=True):
                            value = base + OFFSET[metric] + effect + rng.normal(0, 0.3)
                            row[metric] = value / 100
                        if d < two_class:
                            row["test_top2"] = np.nan
                        row["val_acc"] = row["test_acc"]
                        row["diverged"] = False
                        rows.append(row)
    return pd.DataFrame(rows)


def _shift(summary: pd.DataFrame, loss: str, metric: str, points: float,
           arch: str | None = None) -> pd.DataFrame:
    """``summary`` with ``points`` added to ``metric`` of ``loss`` (of ``arch`` only if given)."""
    out = summary.copy()
    hit = out["loss"] == loss
    if arch is not None:
        hit &= out["arch"] == arch
    out.loc[hit, metric] += points / 100
    return out


def _wide(summary: pd.DataFrame, metric: str, keys: tuple[str, ...] = ("dataset",)
          ) -> pd.DataFrame:
    """By hand: blocks x losses of ``metric`` in %, mean over the other rows (seeds, folds)."""
    return 100 * summary.pivot_table(index=list(keys), columns="loss", values=metric,
                                     aggfunc="mean", dropna=False)


def _linear(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["arch"] == "linear"]


# ---------------------------------------------------------------- metric_blocks


def test_a_summary_without_noise_columns_is_one_clean_level_of_dataset_or_block_rows():
    summary = _linear(_summary(n_datasets=5, seeds=(0, 1, 2), folds=(0, 1)))
    by_dataset = metric_blocks(summary, "test_acc", ["none"])
    assert list(by_dataset) == [("none", 0.0)]
    block = by_dataset[("none", 0.0)]
    assert list(block.index) == [f"d{d:02d}" for d in range(5)]
    assert sorted(block.columns) == sorted(LOSSES)
    hand = 100 * summary[(summary["dataset"] == "d03") & (summary["loss"] == TWO)]["test_acc"]
    assert len(hand) == 3 * 2  # seeds x folds, all averaged into the one dataset row
    assert block.loc["d03", TWO] == pytest.approx(hand.mean())

    by_block = metric_blocks(summary, "test_acc", ["none"], unit="block")[("none", 0.0)]
    assert len(by_block) == 5 * 3 and by_block.index.names == ["dataset", "seed"]
    hand = summary[(summary["dataset"] == "d03") & (summary["seed"] == 2)
                   & (summary["loss"] == TWO)]["test_acc"]
    assert by_block.loc[("d03", 2), TWO] == pytest.approx(100 * hand.mean())  # folds only
    # top-2 is undefined on the two-class datasets: those rows are not blocks of test_top2
    top2 = metric_blocks(summary, "test_top2", ["none"], unit="block")[("none", 0.0)]
    assert sorted(top2.index.get_level_values("dataset").unique()) == ["d03", "d04"]
    # the clean level only: a noise kind the study lacks gives nothing
    assert metric_blocks(summary, "test_acc", ["uniform"]) == {}


def test_metric_blocks_refuses_an_unknown_unit_and_a_missing_metric():
    summary = _linear(_summary(n_datasets=3))
    with pytest.raises(LossbenchError, match="unit must be one of dataset, block; got 'run'"):
        metric_blocks(summary, "test_acc", ["none"], unit="run")
    with pytest.raises(LossbenchError, match="my.csv: missing column.s. test_top5"):
        metric_blocks(summary, "test_top5", ["none"], source="my.csv")
    with pytest.raises(LossbenchError, match="missing column.s. seed"):
        metric_blocks(summary.drop(columns="seed"), "test_acc", ["none"], unit="block")


# ---------------------------------------------------------------- paired_tests


def _row(table: pd.DataFrame, method: str, other: str) -> pd.Series:
    rows = table[(table["method"] == method) & (table["other"] == other)]
    assert len(rows) == 1
    return rows.iloc[0]


def _check_against_scipy(row: pd.Series, d: pd.Series, alternative: str) -> None:
    ref = stats.wilcoxon(d.to_numpy(), zero_method="zsplit", alternative=alternative)
    assert row["statistic"] == pytest.approx(ref.statistic)
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["n_datasets"] == len(d)
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert (row["n_better"], row["n_worse"]) == (int((d > 0).sum()), int((d < 0).sum()))


def test_difference_contrast_is_the_one_sided_wilcoxon_of_method_minus_other():
    summary = _linear(_summary())
    wide = _wide(summary, "train_acc")
    table = paired_tests(summary, [TWO], [ONE], ["none"], metric="train_acc")
    row = _row(table, TWO, ONE)
    assert (row["noise_kind"], row["noise_rate"]) == ("none", 0.0)
    _check_against_scipy(row, wide[TWO] - wide[ONE], "greater")
    assert row["p_value"] < 0.01 and row["mean_diff"] == pytest.approx(6.0, abs=0.3)
    # the opposite hypothesis is not supported by the same data
    less = _row(paired_tests(summary, [TWO], [ONE], ["none"], metric="train_acc",
                             alternative="less"), TWO, ONE)
    _check_against_scipy(less, wide[TWO] - wide[ONE], "less")
    assert less["p_value"] > 0.5
    with pytest.raises(LossbenchError, match="alternative must be 'greater' or 'less'"):
        paired_tests(summary, [TWO], [ONE], ["none"], alternative="two-sided")


def test_versus_contrast_subtracts_the_gain_on_the_second_metric_over_common_blocks():
    summary = _linear(_summary())
    acc, at = _wide(summary, "test_acc"), _wide(summary, "test_acc_at_0.05")
    table = paired_tests(summary, [TWO], [ONE], ["none"], metric="test_acc_at_0.05",
                         versus="test_acc")
    d = (at[TWO] - at[ONE]) - (acc[TWO] - acc[ONE])
    row = _row(table, TWO, ONE)
    _check_against_scipy(row, d, "greater")
    assert row["n_datasets"] == 12 and row["mean_diff"] == pytest.approx(3.5, abs=0.3)

    # top-2 is NaN on the two-class datasets: they drop out of the test, accuracy's rows too
    top2 = _wide(summary, "test_top2").dropna()
    assert len(top2) == 12 - TWO_CLASS
    row = _row(paired_tests(summary, [TWO], [ONE], ["none"], metric="test_top2",
                            versus="test_acc"), TWO, ONE)
    d = (top2[TWO] - top2[ONE]) - (acc.loc[top2.index, TWO] - acc.loc[top2.index, ONE])
    _check_against_scipy(row, d, "greater")
    assert row["n_datasets"] == 12 - TWO_CLASS
    # the gain on the plain metric alone is larger (it includes the accuracy gain)
    plain = _row(paired_tests(summary, [TWO], [ONE], ["none"], metric="test_top2"), TWO, ONE)
    assert plain["mean_diff"] == pytest.approx(row["mean_diff"] + (
        acc.loc[top2.index, TWO] - acc.loc[top2.index, ONE]).mean())

    # every dataset with two classes: no block has both metrics
    with pytest.raises(LossbenchError, match="no block has test_top2 of 'two_scale.eta=0.01.' "
                                             "and 'one_scale' at none 0"):
        paired_tests(_linear(_summary(n_datasets=3)), [TWO], [ONE], ["none"],
                     metric="test_top2", versus="test_acc")


def test_relative_to_contrast_compares_distances_to_the_reference():
    summary = _linear(_summary())
    acc = _wide(summary, "test_acc")
    table = paired_tests(summary, [ETA["1.0"]], [TWO], ["none"], alternative="less",
                         relative_to=ONE)
    d = (acc[ETA["1.0"]] - acc[ONE]).abs() - (acc[TWO] - acc[ONE]).abs()
    row = _row(table, ETA["1.0"], TWO)
    _check_against_scipy(row, d, "less")
    assert row["p_value"] < 0.01 and row["n_worse"] == 12  # closer on every dataset
    # not the difference contrast: eta=1 is *below* eta=0.01 in accuracy, closer to one_scale
    diff = _row(paired_tests(summary, [ETA["1.0"]], [TWO], ["none"], alternative="less"),
                ETA["1.0"], TWO)
    assert diff["mean_diff"] != pytest.approx(row["mean_diff"])
    with pytest.raises(LossbenchError, match="no test_acc of 'two_scale.eta=0.5.' at none 0"):
        paired_tests(summary, [ETA["1.0"]], [TWO], ["none"], relative_to="two_scale(eta=0.5)")


def test_block_unit_pairs_seeds_and_holm_runs_over_every_row():
    summary = _linear(_summary(n_datasets=3, seeds=tuple(range(10))))
    acc = _wide(summary, "test_acc", ("dataset", "seed"))
    table = paired_tests(summary, [ONE], FIXED, ["none"], unit="block")
    for fixed in FIXED:
        _check_against_scipy(_row(table, ONE, fixed), acc[ONE] - acc[fixed], "greater")
    assert (table["n_datasets"] == 30).all()
    assert table["p_holm"].tolist() == pytest.approx(
        multipletests(table["p_value"], method="holm")[1].tolist())
    assert (table["p_holm"] < 0.05).all()
    # the same three datasets with seeds averaged: n = 3, the smallest one-sided p is 1/8
    per_dataset = paired_tests(summary, [ONE], FIXED, ["none"], unit="dataset")
    assert (per_dataset["n_datasets"] == 3).all() and (per_dataset["p_value"] >= 0.125).all()

    # Holm over rows with unequal p: against every other method (some ahead, some behind)
    others = paired_tests(_linear(_summary()), [TWO], "others", ["none"])
    assert sorted(others["other"]) == sorted(set(LOSSES) - {TWO})
    assert others["p_holm"].tolist() == pytest.approx(
        multipletests(others["p_value"], method="holm")[1].tolist())
    assert (others["p_holm"] >= others["p_value"]).all()
    assert (others["p_holm"] > others["p_value"]).any()


@pytest.mark.parametrize("methods, over, contrast, missing", [
    (["two_scale(eta=0.5)"], [ONE], {}, "two_scale(eta=0.5)"),
    ([TWO], ["focal"], {}, "focal"),
    ([TWO], ["focal"], {"metric": "test_top2", "versus": "test_acc"}, "focal"),
    ([ETA["1.0"]], [TWO], {"relative_to": "cross_entropy"}, "cross_entropy"),
])
def test_a_missing_method_is_named(methods, over, contrast: dict, missing: str):
    summary = _linear(_summary(n_datasets=5))
    with pytest.raises(LossbenchError) as err:
        paired_tests(summary, methods, over, ["none"], source="s.csv", **contrast)
    message = str(err.value)
    assert message.startswith("s.csv: no ") and f"'{missing}'" in message
    assert ONE in message.split("methods there: ")[1]  # what the summary has instead


# ---------------------------------------------------------------- claims (real specs)


def _verdicts(spec: str, summary: pd.DataFrame, claims: list[str] | None = None
              ) -> dict[str, Verdict]:
    """The verdicts of a real claims file on ``summary``, per arch, as noise_verdicts calls."""
    study = load_study(CLAIMS / spec)
    groups = {str(arch): part for arch, part in summary.groupby("arch")}
    return {v.claim.id: v for v in verdicts(study, {}, {}, study.baseline, groups,
                                            claims=claims)}


UCI_IDS = ["train_gain", "test_gain", "close_enough_gain_exceeds_top1",
           "topk_gain_exceeds_top1", "fixed_does_not_help", "separation_below_two_scale",
           "large_eta_recovers_one_scale"]


def _broken_a(summary: pd.DataFrame) -> pd.DataFrame:
    """Close-enough gain 0 (below the accuracy gain), no train gain on mlp, fixed scales ahead,
    eta = 1 farther from one_scale than eta = 0.01, no separation results, top-2 undefined."""
    summary = _shift(summary, TWO, "test_acc_at_0.05", -5)
    summary = _shift(summary, TWO, "train_acc", -8, arch="mlp")  # one arch suffices to fail
    for fixed in FIXED:
        summary = _shift(summary, fixed, "test_acc", 5)
    summary = _shift(summary, ETA["1.0"], "test_acc", -4)
    return summary[summary["loss"] != SEP].assign(test_top2=np.nan)


def _broken_b(summary: pd.DataFrame) -> pd.DataFrame:
    """two_scale(eta=0.01) 1.5 points below one_scale in test accuracy (so below separation
    too) and its top-2 gain below that (its close-enough gain still above)."""
    return _shift(_shift(summary, TWO, "test_acc", -3), TWO, "test_top2", -7)


@pytest.fixture(scope="module")
def uci_built() -> dict[str, Verdict]:
    return _verdicts("two_scale_uci.yaml", _summary())


def test_uci_claims_are_reproduced_where_the_effects_are_built_in(uci_built):
    assert list(uci_built) == UCI_IDS
    assert all(v.reproduced is True for v in uci_built.values()), {
        i: v.evidence for i, v in uci_built.items()}
    for verdict in uci_built.values():
        assert verdict.evidence.startswith("linear: ") and "; mlp: " in verdict.evidence
    assert "linear: 3/3 comparisons significant" in uci_built["fixed_does_not_help"].evidence
    # top-2 over the multi-class datasets only; close-enough over all of them
    assert f"{12 - TWO_CLASS} datasets" in uci_built["topk_gain_exceeds_top1"].evidence
    assert "12 datasets" in uci_built["close_enough_gain_exceeds_top1"].evidence
    # the rule as stated names the versus metric and the reference
    rule = uci_built["close_enough_gain_exceeds_top1"].rule
    assert "`test_acc_at_0.05`" in rule and "`test_acc`" in rule
    assert "|method − `one_scale`|" in uci_built["large_eta_recovers_one_scale"].rule


@pytest.mark.parametrize("change, expected", [
    (_broken_a, {"train_gain": False, "test_gain": True,
                 "close_enough_gain_exceeds_top1": False, "topk_gain_exceeds_top1": None,
                 "fixed_does_not_help": False, "separation_below_two_scale": None,
                 "large_eta_recovers_one_scale": False}),
    (_broken_b, {"train_gain": True, "test_gain": False,
                 "close_enough_gain_exceeds_top1": True, "topk_gain_exceeds_top1": False,
                 "fixed_does_not_help": True, "separation_below_two_scale": False,
                 "large_eta_recovers_one_scale": True}),
], ids=["a", "b"])
def test_uci_claims_fail_or_go_untested_where_the_summary_says_otherwise(change, expected):
    found = _verdicts("two_scale_uci.yaml", change(_summary()))
    assert {i: v.reproduced for i, v in found.items()} == expected, {
        i: v.evidence for i, v in found.items()}
    if change is _broken_a:
        assert "mlp: 0/1 comparisons significant" in found["train_gain"].evidence
        assert "linear: 1/1 comparisons significant" in found["train_gain"].evidence
        assert "'two_scale_sep(eta=0.01)'" in found["separation_below_two_scale"].evidence
        assert "no block has test_top2" in found["topk_gain_exceeds_top1"].evidence
        for claim_id in ("separation_below_two_scale", "topk_gain_exceeds_top1"):
            assert found[claim_id].evidence.startswith("not tested")


def test_digit_claims_rank_dataset_by_seed_blocks():
    summary = _summary(n_datasets=3, seeds=tuple(range(10)), archs=("fc2",), two_class=0)
    found = _verdicts("two_scale_digits.yaml", summary)
    assert len(found) == 7
    assert {i: v.reproduced for i, v in found.items()} == {i: True for i in found}, {
        i: v.evidence for i, v in found.items()}
    assert all("30 blocks" in v.evidence for v in found.values())
    assert "2/2 comparisons significant" in found["large_eta_recovers_one_scale"].evidence
    # three datasets with seeds averaged could never reach p < 0.05 (1/8 at best): the blocks
    # are what decides these claims
    per_dataset = paired_tests(summary, [TWO], [ONE], ["none"], metric="train_acc")
    assert per_dataset["p_value"].min() >= 0.125
    # eta = 100 drifts off one_scale: the closer-to claim fails, the others stand
    found = _verdicts("two_scale_digits.yaml", _shift(summary, ETA["100.0"], "test_acc", 3),
                      claims=["test_gain", "large_eta_recovers_one_scale"])
    assert found["large_eta_recovers_one_scale"].reproduced is False
    assert "1/2 comparisons significant" in found["large_eta_recovers_one_scale"].evidence
    assert found["test_gain"].reproduced is True


# ---------------------------------------------------------------- per-metric analyses


def _scores(summary: pd.DataFrame) -> pd.DataFrame:
    """scores.csv as `lossbench collect` writes it (folds averaged)."""
    return fold_average(summary)


def test_fold_average_carries_the_test_sets_other_accuracies():
    summary = _summary(n_datasets=4, seeds=(0,), archs=("linear",), folds=(0, 1, 2))
    summary = summary.assign(**{"test_superclass_acc": 0.5 + summary["fold"] / 10,
                                "test_superclass_acc_at_0.1": 0.6 + summary["fold"] / 10,
                                "test_top10": summary["test_top2"],
                                "train_top2": 0.9, "test_top_k": 0.9})  # last two: not carried
    scores = fold_average(summary).set_index(["dataset", "loss"])
    assert (scores["n_folds"] == 3).all()
    for col in ("test_top2", "test_acc_at_0.05", "test_superclass_acc",
                "test_superclass_acc_at_0.1", "test_top10"):
        hand = summary.groupby(["dataset", "loss"])[col].mean()
        assert scores[col].to_numpy() == pytest.approx(hand.loc[scores.index].to_numpy(),
                                                       nan_ok=True), col
    assert scores.loc[("d03", TWO), "test_superclass_acc"] == pytest.approx(0.6)
    # undefined on the two-class datasets stays undefined (never 0, never dropped)
    assert scores.loc[("d00", TWO), "test_top2"] != scores.loc[("d00", TWO), "test_top2"]
    assert len(scores) == 4 * len(LOSSES)
    assert not {"train_top2", "test_top_k"} & set(scores.columns)


def test_metrics_long_has_one_row_per_run_and_metric_and_names_undefined_datasets():
    summary = _summary(n_datasets=5, archs=("linear",))
    selected = select_scores(_scores(summary), "linear", "mean", log=lambda m: None)
    lines: list[str] = []
    metrics = ["test_acc_pct", "test_top2_pct", "test_acc_at_0.05_pct"]
    long = metrics_long(selected, metrics, log=lines.append)
    assert lines == [f"test_top2_pct: undefined on {TWO_CLASS} dataset(s), left out: "
                     "d00, d01, d02"]
    assert {"metric", "value", "dataset", "loss", "seed", "arch"} <= set(long.columns)
    assert not [c for c in long.columns if c.endswith("_pct") or c.startswith("test_")
                or c in ("val_acc", "n_folds", "diverged")]
    runs = len(selected)
    assert runs == 5 * len(LOSSES) * 2
    counts = long["metric"].value_counts()
    assert counts["test_acc_pct"] == counts["test_acc_at_0.05_pct"] == runs
    assert counts["test_top2_pct"] == runs * (5 - TWO_CLASS) // 5
    assert not long["value"].isna().any()
    row = long[(long["metric"] == "test_acc_at_0.05_pct") & (long["dataset"] == "d04")
               & (long["loss"] == TWO) & (long["seed"] == 1)]
    hand = summary[(summary["dataset"] == "d04") & (summary["loss"] == TWO)
                   & (summary["seed"] == 1)]["test_acc_at_0.05"]
    assert row["value"].tolist() == pytest.approx([100 * hand.iloc[0]])
    with pytest.raises(LossbenchError, match=r"sc.csv: no metric column\(s\) test_top5_pct; "
                                             r"known: .*test_top2_pct"):
        metrics_long(selected, ["test_acc_pct", "test_top5_pct"], source="sc.csv")


def test_select_cli_writes_the_long_form_and_refuses_an_unknown_metric(tmp_path: Path,
                                                                        capsys):
    path, out = tmp_path / "scores.csv", tmp_path / "long.csv"
    _scores(_summary(n_datasets=4)).to_csv(path, index=False)
    assert main(["select", str(path), "--arch", "mlp", "--selection", "blocks", "--metrics",
                 "test_top2_pct,test_acc_at_0.05_pct", "--out", str(out)]) == 0
    assert ("test_top2_pct: undefined on 6 dataset(s), left out: d00/seed0, d00/seed1, "
            "d01/seed0, d01/seed1, d02/seed0, d02/seed1\n") in capsys.readouterr().out
    long = pd.read_csv(out)
    assert set(long["arch"]) == {"mlp"} and set(long["metric"]) == {
        "test_top2_pct", "test_acc_at_0.05_pct"}
    top2 = long[long["metric"] == "test_top2_pct"]
    assert sorted(top2["dataset"].unique()) == ["d03/seed0", "d03/seed1"]  # blocks
    assert main(["select", str(path), "--arch", "mlp", "--selection", "mean", "--metrics",
                 "test_top5_pct", "--out", str(tmp_path / "bad.csv")]) == 2
    assert "no metric column(s) test_top5_pct" in capsys.readouterr().err
    assert not (tmp_path / "bad.csv").exists()


# ---------------------------------------------------------------- study files and table


def _uci_config(tmp_path: Path, metrics: str) -> Path:
    text = (STUDIES / "two_scale_uci.yaml").read_text(encoding="utf-8")
    line = "metrics: [test_top2_pct, test_acc_at_0.05_pct]"
    assert line in text
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "two_scale_uci.yaml").write_text(text.replace(line, f"metrics: {metrics}"),
                                               encoding="utf-8")
    return folder


@pytest.mark.parametrize("metrics", ["[test_top2]", "[train_acc_pct]", "test_top2_pct",
                                     "[test_top2_pct, 5]", "[test_acc_at_x_pct]"])
def test_study_metrics_must_be_percent_accuracy_columns(tmp_path: Path, metrics: str):
    from bench.studies import load_study as load_config

    folder = _uci_config(tmp_path, metrics)
    with pytest.raises(LossbenchError) as err:
        load_config("two_scale_uci", folder)
    message = str(err.value)
    assert message.startswith(f"{folder / 'two_scale_uci.yaml'}: 'metrics' must be a list")
    assert "\n" not in message


def test_study_metrics_accept_accuracy_top_k_close_enough_and_super_class(tmp_path: Path):
    from bench.studies import load_study as load_config

    wanted = ["test_acc_pct", "test_top5_pct", "test_acc_at_0.1_pct",
              "test_superclass_acc_pct", "test_superclass_acc_at_0.05_pct"]
    folder = _uci_config(tmp_path, "[" + ", ".join(wanted) + "]")
    assert load_config("two_scale_uci", folder).metrics == wanted
    assert load_config("two_scale_uci", STUDIES).metrics == ["test_top2_pct",
                                                              "test_acc_at_0.05_pct"]


def test_studies_table_lists_a_cpu_target_as_run_once_its_scores_are_there(tmp_path: Path,
                                                                          monkeypatch):
    from bench.data import dataset_source_env
    from bench.studies import load_study as load_config

    for name in ("two_scale_uci", "two_scale_digits"):  # data configured (not read here)
        for dataset in load_config(name, STUDIES).datasets:
            if env := dataset_source_env(dataset):
                monkeypatch.setenv(env, str(tmp_path / "nowhere"))
    results, out = tmp_path / "results", tmp_path / "studies.csv"
    args = ["studies", "--folder", str(STUDIES), "--cpu-targets", "two_scale_uci",
            "two_scale_digits", "--out", str(out)]

    def table(*extra: str) -> pd.DataFrame:
        assert main([*args, *extra]) == 0
        return pd.read_csv(out, keep_default_na=False).set_index("name")

    for rows in (table(), table("--results-dir", str(results))):
        for name in ("two_scale_uci", "two_scale_digits"):
            assert rows.loc[name, "status"] == "not run"
            assert rows.loc[name, "reason"] == (f"a CPU target of its own: "
                                                f"`snakemake --cores N {name}`")
    folder = results / load_config("two_scale_digits", STUDIES).config["results"]
    (folder / "two_scale_digits").mkdir(parents=True)
    (folder / "two_scale_digits" / "summary.csv").write_text("dataset\n")  # not scores: not run
    assert table("--results-dir", str(results)).loc["two_scale_digits", "status"] == "not run"
    (folder / "two_scale_digits" / "scores.csv").write_text("dataset\n")
    rows = table("--results-dir", str(results))
    assert rows.loc["two_scale_digits", "status"] == "run"
    assert rows.loc["two_scale_digits", "reason"] == (
        "a CPU target of its own (`snakemake --cores N two_scale_digits`): results of its "
        "last run")
    assert rows.loc["two_scale_digits", "claims"] == "two_scale_digits.yaml"
    assert rows.loc["two_scale_uci", "status"] == "not run"  # its own folder is still empty
    assert table().loc["two_scale_digits", "status"] == "not run"  # no results folder given


# ---------------------------------------------------------------- report


def _two_scale_results(tmp_path: Path) -> Path:
    """results/two_scale/two_scale_uci as the pipeline writes it for one arch: collected
    summary and scores, then per metric `lossbench select --metrics` and `lossbench analyze
    --group-by metric --score-col value`; returns the studies table naming it."""
    root = tmp_path / "results" / "two_scale" / "two_scale_uci"
    root.mkdir(parents=True)
    summary = _summary(n_datasets=8, archs=("linear",))
    # mean p_y: flatter test probabilities for two_scale (the close-enough caveat)
    summary["test_mean_py"] = np.where(summary["loss"] == TWO, 0.45, 0.65)
    summary.to_csv(root / "summary.csv", index=False)
    _scores(summary).to_csv(root / "scores.csv", index=False)
    pd.DataFrame({"method": LOSSES, "label": [m.replace("two_scale", "TS") for m in LOSSES]}
                 ).to_csv(root / "losses.csv", index=False)
    sel = root / "analysis" / "linear" / "mean" / "metrics"
    sel.mkdir(parents=True)
    assert main(["select", str(root / "scores.csv"), "--arch", "linear", "--selection", "mean",
                 "--metrics", "test_acc_at_0.05_pct,test_top2_pct,test_acc_pct",
                 "--out", str(sel / "scores.csv")]) == 0
    assert main(["analyze", str(sel / "scores.csv"), "--out", str(sel), "--dataset-col",
                 "dataset", "--method-col", "loss", "--score-col", "value", "--group-by",
                 "metric", "--baseline", ONE, "--average-over", "seed", "--drop-incomplete",
                 "--labels", str(root / "losses.csv")]) == 0
    studies = tmp_path / "studies.csv"
    pd.DataFrame({"name": ["two_scale_uci"], "status": ["run"], "reason": [""],
                  "claims": ["two_scale_uci.yaml"]}).to_csv(studies, index=False)
    return studies


def summary_of(tmp_path: Path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "results" / "two_scale" / "two_scale_uci" / "summary.csv")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


@pytest.mark.slow
def test_report_shows_a_table4_per_measure_accuracy_first_and_the_verdicts(tmp_path: Path):
    text = render(tmp_path / "results", studies=_two_scale_results(tmp_path))
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("| method | ")]
    assert len(headers) == 3  # means, the (here empty) Table 4 of the selection, per measure
    means = {_cells(r)[0]: _cells(r)[1:] for r in lines[headers[0] + 2:lines.index("", headers[0])]}
    assert _cells(lines[headers[0]])[1:] == [f"`{c}`" for c in (
        "train_acc", "test_acc", "test_top2", "test_acc_at_0.05", "test_mean_py")]
    by_hand = _wide(summary_of(tmp_path), "test_acc").mean()
    assert means[f"TS(eta=0.01) (`{TWO}`)"][1] == f"{by_hand[TWO]:.2f}"
    assert means[f"TS(eta=0.01) (`{TWO}`)"][4] == "45.00"
    assert means["datasets"] == ["8", "8", "5", "8", "8"]  # top-2: multi-class datasets only
    start = headers[2]
    header = _cells(lines[start])
    assert header[:2] == ["method", "accuracy"]  # accuracy first, though selected last
    assert sorted(header[2:]) == ["acc@0.05", "top-2 acc."]
    body = lines[start + 2:lines.index("", start)]
    rows = {_cells(r)[0]: dict(zip(header[1:], _cells(r)[1:], strict=True)) for r in body}
    assert len(rows) == len(LOSSES) + 2  # every method, Friedman p, datasets
    # top-2 over the multi-class datasets only
    assert rows["datasets"] == {"accuracy": "8", "top-2 acc.": "5", "acc@0.05": "8"}
    # each column is its own measure: two_scale(eta=0.01) leads by 1.5 points in accuracy,
    # 5 in acc@0.05 (wins / delta vs one_scale / mean rank, bold: the best)
    two = rows[f"TS(eta=0.01) (`{TWO}`)"]
    assert two["accuracy"].startswith("8 / +1.") and two["acc@0.05"].startswith("8 / +5.")
    assert two["top-2 acc."].startswith("5 / +4.")
    assert all(cell.endswith("/ **1.00**") for cell in two.values())
    assert rows["one_scale (`one_scale`)"]["accuracy"].startswith("0 / +0.00 / ")
    fixed = rows[f"TS_fixed(eta=0.01) (`{FIXED[0]}`)"]
    assert fixed["accuracy"].startswith("0 / -3.") and fixed["acc@0.05"].startswith("0 / -1.")
    # links to each measure's figures, labelled as the columns
    links = [line for line in lines if line.startswith("- linear, cd diagram: ")]
    assert len(links) == 1 and links[0].index("[accuracy](") < links[0].index("[top-2 acc.](")
    assert "metrics/metric=test_top2_pct/cd_diagram.png)" in links[0]
    # the seven claims, decided on summary.csv, each with its comparisons
    assert len([line for line in lines if "**reproduced** on UCI-121" in line]) == 7
    # the paper's value beside each verdict (the claims file's paper_value)
    train_row = next(line for line in lines if line.startswith("| Two-scale raises training"))
    assert _cells(train_row)[1:3] == ["CIFAR-10 +12, CIFAR-100 +13.4, MNIST +7.1 points (train)",
                                      "**reproduced** on UCI-121"]
    assert "| clean | `two_scale(eta=0.01)` | `one_scale` | 5 |" in text  # top-2: 5 datasets
