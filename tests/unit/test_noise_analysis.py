"""Noise-study analysis: accuracy/rank curves with bootstrap CIs, the paired tests behind the
GCE paper's verdicts, and the report sections of a grouped (per-noise-level) study.

Synthetic summaries shaped like a collected noise study (dataset, arch, loss, seed,
noise_kind, noise_rate, train_acc, val_acc, test_acc); no data files, no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.noise import draw_curves, noise_curves
from analysis.paired import paired_tests
from analysis.report import render
from analysis.report.claims import RULES, Claim, load_study
from bench.cli import main
from bench.errors import LossbenchError

LOSSES = ["ce", "mae", "gce", "trunc_gce", "forward(T=True)"]
LEVELS = [("none", 0.0), ("uniform", 0.2), ("uniform", 0.4), ("pair", 0.2)]
# per-level effect (points) of each loss over CE: gce/trunc_gce ahead under uniform noise,
# forward(T=True) ahead under pair noise, MAE behind everywhere
EFFECT = {"ce": 0.0, "mae": -3.0, "gce": 2.0, "trunc_gce": 3.0, "forward(T=True)": 0.5}


def _summary(n_datasets: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_datasets):
        base = 60 + 3 * d
        for arch in ("linear", "mlp"):
            for kind, rate in LEVELS:
                for loss in LOSSES:
                    effect = 0.0 if kind == "none" and loss != "mae" else EFFECT[loss]
                    if kind == "pair" and loss == "forward(T=True)":
                        effect = 5.0
                    for s in (0, 1):
                        acc = base - 40 * rate + effect + rng.normal(0, 0.3)
                        rows.append({"dataset": f"d{d:02d}", "arch": arch, "loss": loss,
                                     "seed": s, "fold": 0, "noise_kind": kind,
                                     "noise_rate": rate, "val_acc": acc / 100,
                                     "test_acc": acc / 100, "train_acc": (acc + 5) / 100})
    return pd.DataFrame(rows)


def test_curves_are_seed_averaged_means_with_ranks_and_cis_around_them():
    summary = _summary()
    curves = noise_curves(summary, ["linear"], seed=3)
    part = summary[(summary["arch"] == "linear") & (summary["noise_kind"] == "uniform")
                   & (summary["noise_rate"] == 0.4)]
    per_dataset = 100 * part.groupby(["dataset", "loss"])["test_acc"].mean().unstack()
    row = curves[(curves["noise_kind"] == "uniform") & (curves["noise_rate"] == 0.4)
                 ].set_index("loss")
    for loss in LOSSES:
        assert row.loc[loss, "acc_mean"] == pytest.approx(per_dataset[loss].mean())
        assert row.loc[loss, "acc_low"] <= row.loc[loss, "acc_mean"] <= row.loc[loss, "acc_high"]
        assert row.loc[loss, "rank_low"] <= row.loc[loss, "rank_mean"] <= row.loc[loss,
                                                                                  "rank_high"]
    # ranks among k losses average k(k+1)/2 per dataset, so their means do too
    k = len(LOSSES)
    assert row["rank_mean"].sum() == pytest.approx(k * (k + 1) / 2)
    assert row.loc["trunc_gce", "rank_mean"] < row.loc["ce", "rank_mean"]
    # seeded: the same numbers again; another seed moves the CIs, never the means
    assert curves.equals(noise_curves(summary, ["linear"], seed=3))
    other = noise_curves(summary, ["linear"], seed=4)
    assert other["acc_mean"].equals(curves["acc_mean"])
    assert not other["acc_low"].equals(curves["acc_low"])


def test_a_dataset_without_a_score_leaves_only_that_level():
    summary = _summary()
    gone = ((summary["dataset"] == "d03") & (summary["noise_kind"] == "pair")
            & (summary["loss"] == "mae"))
    summary.loc[gone, "test_acc"] = np.nan  # every lr diverged there
    curves = noise_curves(summary, ["mlp"])
    n = curves.groupby(["noise_kind", "noise_rate"])["n_datasets"].first()
    assert n[("pair", 0.2)] == 11 and n[("uniform", 0.2)] == 12 and n[("none", 0.0)] == 12


def test_figure_has_a_row_per_noise_kind_with_clean_at_rate_zero():
    curves = noise_curves(_summary(n_datasets=4), ["linear"])
    fig = draw_curves(curves, "linear")
    axes = fig.get_axes()
    assert len(axes) == 2 * 2  # pair and uniform rows, accuracy and rank columns
    xs = {float(x) for line in axes[0].get_lines() for x in line.get_xdata()}
    assert xs == {0.0, 0.2}  # pair row: clean at 0, pair 0.2
    assert axes[1].yaxis_inverted()  # rank 1 at the top
    with pytest.raises(LossbenchError, match="no curves for arch='resnet'"):
        draw_curves(curves, "resnet")


def test_cli_writes_identical_bytes_twice_and_refuses_a_table_without_noise(tmp_path: Path):
    path = tmp_path / "scores.csv"
    _summary(n_datasets=5).to_csv(path, index=False)
    outs = []
    for name in ("a", "b"):
        assert main(["noise-curves", str(path), "--out-dir", str(tmp_path / name)]) == 0
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert set(outs[0]) == {"noise_curves.csv", "noise_curves_linear.png",
                            "noise_curves_linear.svg", "noise_curves_mlp.png",
                            "noise_curves_mlp.svg"}
    assert outs[0] == outs[1]
    _summary(n_datasets=3).drop(columns="noise_kind").to_csv(path, index=False)
    assert main(["noise-curves", str(path), "--out-dir", str(tmp_path / "c")]) == 2


def test_paired_tests_are_one_sided_wilcoxon_with_holm_over_the_claim():
    summary = _summary()
    linear = summary[summary["arch"] == "linear"]
    table = paired_tests(linear, ["gce", "trunc_gce"], ["ce", "mae"], ["uniform"])
    assert len(table) == 2 * 2 * 2  # methods x others x uniform levels
    row = table[(table["method"] == "gce") & (table["other"] == "ce")
                & (table["noise_rate"] == 0.2)].iloc[0]
    part = linear[(linear["noise_kind"] == "uniform") & (linear["noise_rate"] == 0.2)]
    wide = 100 * part.groupby(["dataset", "loss"])["test_acc"].mean().unstack()
    ref = stats.wilcoxon(wide["gce"] - wide["ce"], zero_method="zsplit", alternative="greater")
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["mean_diff"] == pytest.approx((wide["gce"] - wide["ce"]).mean())
    assert (table["p_holm"] >= table["p_value"]).all() and (table["p_holm"] < 0.05).all()
    # the opposite hypothesis is rejected nowhere
    less = paired_tests(linear, ["gce"], ["ce"], ["uniform"], alternative="less")
    assert (less["p_value"] > 0.5).all()
    others = paired_tests(linear, ["forward(T=True)"], "others", ["pair"])
    assert sorted(others["other"]) == sorted(set(LOSSES) - {"forward(T=True)"})
    with pytest.raises(LossbenchError, match="no test_acc of 'focal' at pair 0.2"):
        paired_tests(linear, ["focal"], ["ce"], ["pair"])


def _claim(**params) -> Claim:
    return Claim("c", "claim", "metric", "test", "paper", "paired_wilcoxon",
                 {"metric": "test_acc", "alternative": "higher", "alpha": 0.05, **params})


def test_paired_wilcoxon_rule_needs_every_comparison_in_every_arch():
    study = load_study(Path(__file__).resolve().parents[2] / "analysis/claims/noise_uci.yaml")
    summary = _summary()
    groups = {a: part for a, part in summary.groupby("arch")}
    check = RULES["paired_wilcoxon"].check
    ok, evidence = check(groups, "ce", study, **_claim(
        methods=["gce", "trunc_gce"], over=["ce", "mae"], kinds=["uniform"]).params)
    assert ok is True and "linear: 8/8 comparisons significant" in evidence
    # one arch where trunc_gce falls behind gce at pair noise: not reproduced
    worse = summary.copy()
    hit = (worse["arch"] == "mlp") & (worse["loss"] == "trunc_gce") & (
        worse["noise_kind"] == "pair")
    worse.loc[hit, "test_acc"] -= 0.1
    groups = {a: part for a, part in worse.groupby("arch")}
    ok, evidence = check(groups, "ce", study, **_claim(
        methods=["trunc_gce"], over=["gce"], kinds=["uniform", "pair"]).params)
    assert ok is False and "mlp: 2/3 comparisons significant" in evidence
    assert "pair 0.2" in evidence
    ok, evidence = check(groups, "ce", study, **_claim(
        methods=["mae"], over=["ce"], kinds=["none"], metric="train_acc",
        alternative="lower").params)
    assert ok is True
    ok, evidence = check(groups, "ce", study, **_claim(
        methods=["forward"], over=["ce"], kinds=["pair"]).params)
    assert ok is None and evidence.startswith("not tested")


def _grouped_results(tmp_path: Path) -> Path:
    """A results folder as the pipeline writes a noise study: collected summary and
    scores, per-level analysis through `lossbench analyze --group-by`, the curves."""
    root = tmp_path / "results" / "noise" / "noise_uci"
    root.mkdir(parents=True)
    summary = _summary(n_datasets=8)
    summary = summary[summary["arch"] == "linear"]  # one arch keeps the test short
    summary.to_csv(root / "summary.csv", index=False)
    summary.to_csv(root / "scores.csv", index=False)
    pd.DataFrame({"method": LOSSES, "label": ["CE", "MAE", "GCE", "Trunc", "Fwd T"]}).to_csv(
        root / "losses.csv", index=False)
    pd.DataFrame({"name": ["d00", "miniboone"], "status": ["ok", "missing"]}).to_csv(
        root / "datasets.csv", index=False)
    (root / "settings.json").write_text(json.dumps({"epochs": 50}))
    for arch in ("linear",):
        sel = root / "analysis" / arch / "mean"
        sel.mkdir(parents=True)
        part = summary[summary["arch"] == arch].assign(
            test_acc_pct=lambda t: 100 * t["test_acc"])
        part.to_csv(sel / "scores.csv", index=False)
        assert main(["analyze", str(sel / "scores.csv"), "--out", str(sel), "--method-col",
                     "loss", "--score-col", "test_acc_pct", "--baseline", "ce",
                     "--average-over", "seed", "--labels", str(root / "losses.csv"),
                     "--group-by", "noise_kind,noise_rate"]) == 0
        assert main(["noise-curves", str(root / "scores.csv"), "--archs", arch,
                     "--out-dir", str(root / "figures" / arch)]) == 0
    studies = tmp_path / "studies.csv"
    pd.DataFrame({"name": ["noise_uci"], "status": ["run"], "reason": [""],
                  "claims": ["noise_uci.yaml"]}).to_csv(studies, index=False)
    return studies


@pytest.mark.slow
def test_report_shows_levels_curves_and_verdicts_of_a_grouped_study(tmp_path: Path):
    studies = _grouped_results(tmp_path)
    text = render(tmp_path / "results", studies=studies)
    assert "Missing (not trained, not ranked): miniboone." in text
    assert "| method | clean | pair 0.2 | uniform 0.2 | uniform 0.4 |" in text
    assert "noise_curves_linear.png" in text
    assert "Fwd T (`forward(T=True)`)" in text  # labels of the study, parentheses intact
    # claim 1 holds in the synthetic data; claim 3 names a loss the data lacks (forward)
    verdicts = [line for line in text.splitlines() if line.startswith("| ") and (
        "reproduced" in line or "not tested" in line)]
    assert len(verdicts) == 4
    assert "**reproduced** on UCI-121" in verdicts[0]  # Lq / trunc Lq beat CE, MAE
    assert "not tested" in verdicts[2]  # forward (T-hat) absent here
    assert "**reproduced** on UCI-121" in verdicts[3]  # MAE trains less accurately
    assert "cd_diagram.png" in text and "noise_kind=uniform/noise_rate=0.4" in text


def _epochs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-epoch rows of two lrs; the summary selects 0.01 for every run but one (0.001)."""
    rows, chosen = [], []
    for dataset in ("a", "b"):
        for kind, rate in (("none", 0.0), ("uniform", 0.6)):
            for loss in ("ce", "gce(q=0.5)", "gce(q=0.8)"):
                for seed in (0, 1):
                    lr = 0.001 if (dataset, loss, seed) == ("b", "ce", 1) else 0.01
                    chosen.append({"dataset": dataset, "arch": "mlp", "loss": loss,
                                   "seed": seed, "noise_kind": kind, "noise_rate": rate,
                                   "lr": lr})
                    for run_lr in (0.01, 0.001):
                        for epoch in range(3):
                            acc = 0.5 + 0.1 * epoch + (0.2 if run_lr == 0.001 else 0) + seed / 100
                            rows.append({**chosen[-1], "lr": run_lr, "epoch": epoch,
                                         "test_acc": acc})
    return pd.DataFrame(rows), pd.DataFrame(chosen)


def test_q_sweep_follows_each_runs_selected_lr_and_orders_methods_by_q():
    from analysis.qsweep import draw_q_curves, method_q, q_curves

    assert [method_q(m) for m in ("ce", "gce(q=0.25)", "gce(k=0.5, q=0.7)")] == [0, 0.25, 0.7]
    assert np.isnan(method_q("mae"))
    epochs, summary = _epochs()
    curves = q_curves(epochs, summary, "mlp")
    at = curves.set_index(["dataset", "noise_kind", "loss", "epoch"])["test_acc"]
    # a: lr 0.01 for both seeds -> mean of 50 + 10 e + {0, 1}
    assert at[("a", "none", "ce", 2)] == pytest.approx(70.5)
    # b, ce: seed 1 ran at its selected lr 0.001 (+20 points), seed 0 at 0.01
    assert at[("b", "none", "ce", 2)] == pytest.approx((70 + 91) / 2)
    assert list(curves.drop_duplicates("loss")["loss"]) == ["ce", "gce(q=0.5)", "gce(q=0.8)"]
    fig = draw_q_curves(curves, "mlp")
    assert len(fig.get_axes()) == 2 * 2  # datasets x noise levels
    assert fig.get_axes()[0].get_title() == "a, clean"
    with pytest.raises(LossbenchError, match="summary: no rows for arch='linear'"):
        q_curves(epochs, summary, "linear")
