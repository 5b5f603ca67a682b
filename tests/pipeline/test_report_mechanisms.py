"""The mixing_mechanisms study in the report (analysis/claims/mixing_mechanisms.yaml): verdict 1
(gradient-norm-matched CE vs F=0–0.5, Conover–BH) from analysis files written by
``analysis.compare``, verdict 2 (escaping efficiency) from a verdict.csv written by
``lossbench escaping-verdict``, on synthetic results laid out as the pipeline writes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import compare
from analysis.report import render
from analysis.report.claims import StudyStatus, load_study
from analysis.report.read import read_study
from analysis.report.render import SECTIONS, Context
from bench.cli import main
from bench.errors import LossbenchError

REPO = Path(__file__).resolve().parents[2]
METHODS = ["ce", "ce_gradnorm", "ce_el_0to05"]
PROBED = ["ce", "el", "ce_el_0", "ce_el_0to05", "ce_gradnorm"]


def _studies(tmp_path: Path) -> Path:
    table = tmp_path / "studies.csv"
    pd.DataFrame({"name": ["mixing_mechanisms"], "status": ["run"], "reason": [""],
                  "claims": ["mixing_mechanisms.yaml"]}).to_csv(table, index=False)
    return table


def _analyses(study: Path, gains: dict[str, float], n_datasets: int = 30) -> dict:
    """table4.csv, friedman.json and conover_bh.csv per arch, as `lossbench analyze` writes
    them, from scores where each method gains ``gains[arch]``-scaled points over CE."""
    rng = np.random.default_rng(0)
    results = {}
    for arch, gain in gains.items():
        rows = []
        for d in range(n_datasets):
            base = 70 + 10 * rng.random()
            for method, offset in zip(METHODS, (0.0, 0.1, gain), strict=True):
                rows.append({"dataset": f"d{d}", "loss": method,
                             "test_acc_pct": base + offset + rng.normal(0, 0.3)})
        result = compare(pd.DataFrame(rows), method_col="loss", score_col="test_acc_pct",
                         baseline="ce")
        out = study / "analysis" / arch / "mean"
        out.mkdir(parents=True)
        result.table4[["method", "wins", "delta", "mean_rank", "mean_rank_min"]].to_csv(
            out / "table4.csv", index=False)
        (out / "friedman.json").write_text(json.dumps(result.friedman))
        result.conover_bh.rename_axis("method").to_csv(out / "conover_bh.csv")
        results[arch] = result
    (study / "settings.json").write_text(json.dumps({"epochs": 50, "losses": METHODS}))
    pd.DataFrame({"method": METHODS, "label": ["CE", "CE, gradient volume", "F=0–0.5"]}).to_csv(
        study.parent / "losses.csv", index=False)
    return results


def _probe(folder: Path, mix_below_ce: set[int], n_datasets: int = 12) -> None:
    """Probe tables of ``n_datasets`` datasets and the verdict written by the real CLI. EE:
    ce_el_0to05 > ce_el_0 > ce > el, except ce_el_0 below ce on ``mix_below_ce``; at epoch 10
    ce_el_0to05 is below ce on every third dataset (above it on average over epochs)."""
    paths = []
    for d in range(n_datasets):
        rows = []
        for model in ("linear", "mlp"):
            for epoch in (10, 25, 40):
                ce = 1.0 + d
                traces = {"ce": ce, "el": ce / 10, "ce_gradnorm": 1.2 * ce,
                          "ce_el_0": ce / 2 if d in mix_below_ce else 1.5 * ce,
                          "ce_el_0to05": ce / 2 if (epoch == 10 and d % 3 == 0) else 2 * ce}
                rows += [{"dataset": f"d{d}", "model": model, "loss": loss, "epoch": epoch,
                          "trace": traces[loss], "diverged": False} for loss in PROBED]
        run = folder / "runs" / f"d{d}"
        run.mkdir(parents=True)
        paths.append(run / "escaping.csv")
        pd.DataFrame(rows).to_csv(paths[-1], index=False)
        (run / "config.json").write_text(json.dumps({"cost": [
            {"model": model, "loss": loss, "n_params": 10, "estimator": "exact",
             "train_s": 1.0, "probe_s": 0.3 * (d + 1), "probe_s_per_epoch": 0.1 * (d + 1)}
            for model in ("linear", "mlp") for loss in PROBED]}))
    assert main(["escaping-verdict", "--in", *map(str, paths), "--out", str(folder),
                 "--claims", "ce_el_0to05>ce,ce_el_0>ce,ce>el"]) == 0


def _rows(text: str, ncols: int) -> dict[str, list[str]]:
    """Markdown table rows with ``ncols`` cells, keyed by their first cell."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == ncols:
            out.setdefault(cells[0], cells[1:])
    return out


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def test_both_verdicts_render_with_their_numbers(results: Path, tmp_path: Path):
    study = results / "mechanisms" / "mixing_mechanisms"
    ours = _analyses(study, {"linear": 1.0, "mlp": 1.0})
    _probe(results / "mechanisms" / "escaping", mix_below_ce=set())
    text = render(results, studies=_studies(tmp_path))
    assert "| `mixing_mechanisms` |" in text and "run: protocols `mixing_mechanisms`; 3 " \
                                                 "claims" in text
    one = text.split("### Verdict 1")[1].split("### Table 4")[0]
    rows = _rows(one, 5)
    (verdict1,) = [v for k, v in rows.items() if k.startswith('"The modified cross entropy')]
    assert verdict1[0] == "**reproduced**"
    for arch, result in ours.items():  # the pair's adjusted p as analysis wrote it
        p = result.conover_bh.loc["ce_el_0to05", "ce_gradnorm"]
        assert f"{arch}: ce_el_0to05: rank" in verdict1[2] and f"Conover–BH p = {p:.2e}" in one
    # Table 4 per arch, ours alone (no paper table for this claim)
    table4 = text.split("### Table 4 per architecture (ours)")[1].split("###")[0]
    assert "| method | linear | mlp |" in table4
    t = ours["mlp"].table4.set_index("method").loc["ce_gradnorm"]
    assert _rows(table4, 3)["CE, gradient volume (`ce_gradnorm`)"][1] == \
        f"{t['wins']:g} / {t['delta']:+.2f} / {t['mean_rank']:.2f}"
    # every Conover pair, with both mean ranks
    posthoc = text.split("### Conover–BH pairwise p-values")[1].split("###")[0]
    for arch, result in ours.items():
        ranks = result.table4.set_index("method")["mean_rank"]
        for a, b in (("ce", "ce_gradnorm"), ("ce", "ce_el_0to05"),
                     ("ce_gradnorm", "ce_el_0to05")):
            p = result.conover_bh.loc[a, b]
            cell = f"**{p:.2e}**" if p < 0.05 else f"{p:.2e}"
            assert f"| {arch} | `{a}` vs `{b}` | {ranks[a]:.2f} / {ranks[b]:.2f} | {cell} |" \
                in posthoc
    # verdict 2: decided on the mean over epochs; epoch 10 is shown but does not decide
    two = text.split("## Verdict 2")[1]
    assert '| EE(L_αβ) > EE(L_ce): mixing raises the escaping efficiency (eq. 19) | ' \
           '**reproduced** |' in two
    assert "linear: ce_el_0to05 > ce on 12/12 datasets (100%), p = 2.44e-04" in two
    epochs = _rows(two, 6)["EE(`ce_el_0to05`) > EE(`ce`)"]
    assert epochs[:2] == ["`linear`", "8/12 (67%), p = 1.94e-01"]  # 4 of 12 below at epoch 10
    assert epochs[-1] == "12/12 (100%), p = 2.44e-04"
    assert "![Tr(HΣ) over training per loss](mechanisms/escaping/traces.png)" in two
    assert "`mechanisms/escaping/dataset_traces.csv`" in two
    # what the probe cost: median and max of the per-run seconds per probed epoch
    cost = _rows(two, 6)["`mlp`"]
    assert cost[:3] == ["12 × 5", "exact 60", "0.65 / 1.20"]


def test_gradnorm_as_good_as_the_mix_and_too_few_datasets_are_not_reproduced(results: Path,
                                                                              tmp_path: Path):
    study = results / "mechanisms" / "mixing_mechanisms"
    ours = _analyses(study, {"linear": 1.0, "mlp": 0.1})  # mlp: the mix = ce_gradnorm
    _probe(results / "mechanisms" / "escaping", mix_below_ce={0, 1, 2, 3})
    text = render(results, studies=_studies(tmp_path))
    one = text.split("### Verdict 1")[1].split("### Table 4")[0]
    assert "| **not reproduced** |" in one
    p = ours["mlp"].conover_bh.loc["ce_el_0to05", "ce_gradnorm"]
    assert p >= 0.05 and f"Conover–BH p = {p:.2e}" in one
    two = text.split("## Verdict 2")[1]
    verdicts = {k: v[0] for k, v in _rows(two, 5).items() if k.startswith("EE(L")}
    # F=0 above CE on 8 of 12 datasets: p = 0.19, so the first inequality fails for both mixes
    assert verdicts == {"EE(L_αβ) > EE(L_ce): mixing raises the escaping efficiency (eq. 19)":
                        "**not reproduced**",
                        "EE(L_ce) > EE(L_el) (supplementary, the case α ≠ 1)": "**reproduced**"}
    assert "ce_el_0 > ce on 8/12 datasets (67%), p = 1.94e-01" in two


def test_missing_pieces_say_what_is_missing(results: Path, tmp_path: Path):
    study = results / "mechanisms" / "mixing_mechanisms"
    _analyses(study, {"linear": 1.0, "mlp": 1.0})
    (study / "analysis" / "mlp" / "mean" / "conover_bh.csv").unlink()
    text = render(results, studies=_studies(tmp_path))
    assert "| not tested | " in text.split("### Verdict 1")[1].split("###")[0]
    assert "no Conover–BH p-value of ce_el_0to05 vs ce_gradnorm (mlp)" in text
    assert "| mlp | – | – | no conover_bh.csv |" in text
    assert "No `mechanisms/escaping/verdict.csv`: the escaping-efficiency probe has not run " \
           "(`snakemake --cores N mixing_mechanisms_probe`)." in text


def test_bad_verdict_table_and_unknown_claim_are_one_line(results: Path, tmp_path: Path):
    study = results / "mechanisms" / "mixing_mechanisms"
    _analyses(study, {"linear": 1.0, "mlp": 1.0})
    folder = results / "mechanisms" / "escaping"
    folder.mkdir()
    (folder / "verdict.csv").write_text("claim,model\nx,linear\n")
    with pytest.raises(LossbenchError, match=r"escaping/verdict.csv: missing column\(s\) a, b, "):
        render(results, studies=_studies(tmp_path))

    spec = load_study(REPO / "analysis" / "claims" / "mixing_mechanisms.yaml")
    found = read_study(results / "mechanisms", "mixing_mechanisms")
    ctx = Context(StudyStatus("mixing_mechanisms", "run", "", spec), found, None, "ce", results,
                  results, protocol=found.protocols[0])
    with pytest.raises(LossbenchError, match="verdicts section: unknown claim id"):
        SECTIONS["verdicts"].render(ctx, claims=["gradnorm_not_competitve"])
