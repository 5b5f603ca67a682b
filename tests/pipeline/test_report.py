"""`lossbench report` on a synthetic results folder: verdict rules, missing data, errors, and
claims as data (a second study renders from its own tables, with no renderer change).

The folder mimics what the pipeline writes (CONTRIBUTING.md layout); the paper's own Table 4
must come out as "reproduced" on every claim, and perturbing one number must flip exactly the
claim that depends on it.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.report import render, write_report
from bench.cli import main
from bench.errors import LossbenchError

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "analysis" / "paper_tables" / "mixing_table4.csv"
IDS = ["ce", "el", "ce_el_0", "ce_el_0_05", "ce_el_0to05", "focal"]


def _write_protocol(uci: Path, protocol: str, paper: pd.DataFrame, p_value: float = 1e-12,
                    tweak=None) -> None:
    root = uci / protocol
    for arch in ("linear", "mlp"):
        table = paper[paper["group"] == arch].drop(columns="group").copy()
        if tweak is not None:
            table = tweak(arch, table)
        for sel in ("mean", "seed0", "seed1"):
            folder = root / "analysis" / arch / sel
            folder.mkdir(parents=True)
            table.to_csv(folder / "table4.csv", index=False)
            (folder / "friedman.json").write_text(json.dumps(
                {"statistic": 80.5, "p_value": p_value, "n_datasets": 120, "n_methods": 6}))
    (root / "settings.json").write_text(json.dumps({"epochs": 50, "losses": IDS}))
    pd.DataFrame({"dataset": ["iris", "wine"], "arch": ["linear", "mlp"],
                  "seconds": [10.0, 20.0], "start": [0.0, 5.0], "end": [10.0, 25.0]}
                 ).to_csv(root / "timings.csv", index=False)
    pd.DataFrame({"dataset": ["iris", "wine"], "test_acc": [0.9, 0.8]}).to_csv(
        root / "scores.csv", index=False)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    uci = tmp_path / "results" / "uci"
    uci.mkdir(parents=True)
    pd.DataFrame({"name": ["iris", "miniboone", "wine"], "n_samples": [150, 130064, 178],
                  "n_features": [4, 50, 13], "n_classes": [3, 2, 3],
                  "status": ["ok", "missing", "ok"]}).to_csv(uci / "datasets.csv", index=False)
    pd.DataFrame({"method": IDS, "label": [i.upper() for i in IDS]}).to_csv(
        uci / "losses.csv", index=False)
    _write_protocol(uci, "klambauer", pd.read_csv(PAPER))
    return tmp_path / "results"


def _verdict_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith(("**", "not tested")):
            rows.setdefault(cells[0], cells[1])
    return rows


def test_paper_numbers_reproduce_every_claim(results: Path):
    text = render(results)  # the packaged Table 4
    assert text == render(results, PAPER)
    verdicts = _verdict_rows(text)
    assert len(verdicts) == 5
    assert set(verdicts.values()) == {"**reproduced**"}
    assert "Missing (not trained, not ranked): miniboone." in text
    # our table next to the paper's: gradual mixing, linear, both sides 48 / +0.30 / 2.12
    assert text.count("48 / +0.30 / 2.12") == 2
    assert "sum of job times 0m 30s; elapsed from first job start to last job end 0m 25s" in text


@pytest.mark.parametrize(
    ("claim", "tweak"),
    [
        ("Focal is outperformed by CE",
         lambda arch, t: t.assign(delta=t["delta"].where(t["method"] != "focal", 0.1))),
        ("EL alone is not competitive",
         lambda arch, t: t.assign(mean_rank=t["mean_rank"].where(
             (t["method"] != "el") | (arch != "mlp"), 2.5))),  # < CE 2.70, > gradual 2.37
        ("All three mixes beat CE",
         lambda arch, t: t.assign(mean_rank=t["mean_rank"].where(t["method"] != "ce_el_0", 2.6))),
    ],
)
def test_one_perturbed_number_flips_its_claim(results: Path, tmp_path: Path, claim, tweak):
    uci = results / "uci"
    _write_protocol(uci, "klambauer_swapped", pd.read_csv(PAPER), tweak=tweak)
    text = render(results, PAPER)
    changes = text.split("## Do the verdicts depend on the split protocol?")[1]
    assert f"Verdicts that change: “{claim}” under `klambauer_swapped`." in changes
    row = next(line for line in changes.splitlines() if line.startswith(f"| {claim}"))
    assert row.split("|")[2].strip() == "**reproduced**"
    assert row.split("|")[3].strip() == "**not reproduced**"


def test_friedman_threshold(results: Path):
    _write_protocol(results / "uci", "holdout", pd.read_csv(PAPER), p_value=0.02)
    text = render(results, PAPER)
    assert "“The Friedman test rejects equality at a very low p-value” under `holdout`" in text


def test_partial_results_say_what_is_missing(results: Path):
    for sel in ("mean", "seed0", "seed1"):
        table = results / "uci" / "klambauer" / "analysis" / "mlp" / sel / "table4.csv"
        pd.read_csv(table).query("method != 'focal'").to_csv(table, index=False)
    verdicts = _verdict_rows(render(results, PAPER))
    assert verdicts["Focal is outperformed by CE"] == "not tested"
    assert verdicts["All three mixes beat CE"] == "**reproduced**"


def test_cli_writes_atomically_and_reports_bad_input(results: Path, capsys):
    assert main(["report", "--results-dir", str(results), "--paper-table", str(PAPER)]) == 0
    readme = results / "README.md"
    assert readme.read_text().startswith("# lossbench results")
    assert not list(results.glob(".README.md.*"))  # no temp file left behind
    assert write_report(results, paper_table=PAPER) == readme

    table = results / "uci" / "klambauer" / "analysis" / "linear" / "mean" / "table4.csv"
    pd.read_csv(table).drop(columns="mean_rank").to_csv(table, index=False)
    assert main(["report", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lossbench report: error: ") and "table4.csv" in err
    assert "mean_rank" in err and len(err.splitlines()) == 1

    with pytest.raises(LossbenchError, match="no uci/ folder"):
        render(results / "nowhere")


def test_paper_table_can_be_left_out(results: Path):
    text = render(results, paper=False)
    assert "| 48 / +0.30 / 2.12 | – |" in text  # ours, and no paper cell beside it
    assert text.count("48 / +0.30 / 2.12") == 1 and "Mean ranks and ties" not in text
    assert set(_verdict_rows(text).values()) == {"**reproduced**"}  # verdicts need only ours


def _toy_study(root: Path) -> Path:
    """A second study (another paper, other groups and labels) given only as data."""
    spec = {
        "study": "toy", "title": "Toy losses under label noise", "paper": "Doe 2030, Table 2",
        "intro": "Reproduces the toy claims of Doe (2030).", "results": "toy",
        "paper_table": "toy_table2.csv", "baseline": "mae", "group": "noise rate",
        "delta": "ΔErr",
        "claims": [
            {"id": "gce_best", "claim": "GCE ranks first at every noise rate",
             "metric": "mean rank", "test": "none", "paper_value": "1.5",
             "rule": {"kind": "lowest_mean_rank", "method": "gce"}},
            {"id": "ce_worse", "claim": "CE is worse than MAE",
             "metric": "mean rank", "test": "none", "paper_value": "2.5",
             "rule": {"kind": "worse_than_baseline", "method": "ce"}},
            {"id": "omnibus", "claim": "The methods differ", "metric": "p", "test": "Friedman",
             "paper_value": "p < 0.05", "rule": {"kind": "friedman_p_below", "alpha": 0.05}},
        ],
        "sections": [
            {"kind": "protocols", "heading": "## Toy setting `{protocol}`", "sections": [
                {"kind": "verdicts", "heading": "### Toy verdicts"},
                {"kind": "paper_table", "heading": "### Toy Table 2",
                 "paper_note": "paper: one seed"}]},
        ],
    }
    (root / "toy.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    pd.DataFrame({"method": ["ce", "mae", "gce"] * 2, "group": ["0.2"] * 3 + ["0.4"] * 3,
                  "wins": [1, 2, 3] * 2, "delta": [0.0] * 6, "mean_rank": [2.5, 2.0, 1.5] * 2}
                 ).to_csv(root / "toy_table2.csv", index=False)
    table = root / "studies.csv"
    pd.DataFrame({"name": ["uci", "toy", "image"], "status": ["run", "run", "not run"],
                  "reason": ["", "", "data not configured"],
                  "claims": ["mixing_uci.yaml", "toy.yaml", ""]}).to_csv(table, index=False)
    return table


def test_second_study_renders_from_data_alone(results: Path, tmp_path: Path):
    studies = _toy_study(tmp_path)
    for group, ranks in (("0.2", [2.5, 2.0, 1.5]), ("0.4", [2.0, 2.5, 1.5])):
        folder = results / "toy" / "sym" / "analysis" / group / "mean"
        folder.mkdir(parents=True)
        pd.DataFrame({"method": ["ce", "mae", "gce"], "wins": [1, 2, 3],
                      "delta": [-1.0, 0.0, 1.0], "mean_rank": ranks}
                     ).to_csv(folder / "table4.csv", index=False)
        (folder / "friedman.json").write_text(json.dumps({"statistic": 9.0, "p_value": 0.01}))
    text = render(results, studies=studies)
    assert text.startswith("# lossbench results: CE/EL mixing on UCI-121; Toy losses under "
                           "label noise\n")
    assert "| `image` | – | not run: data not configured |" in text
    assert "run: protocols `sym`; 3 claims" in text
    toy = text.split("## Toy setting `sym`")[1]
    rows = _verdict_rows(toy)
    assert rows == {"GCE ranks first at every noise rate": "**reproduced**",
                    "CE is worse than MAE": "**not reproduced**",  # at 0.4 CE ranks 2.0 < 2.5
                    "The methods differ": "**reproduced**"}
    assert "`ce` has a higher (worse) mean rank than the baseline and a negative ΔErr, for " \
           "every noise rate" in toy
    assert "0.4: ce: rank 2.00, ΔErr -1.00 (position 2/3) vs mae rank 2.50" in toy
    assert "3 / +1.00 / 1.50 | 3 / +0.00 / 1.50" in toy  # ours | the toy paper's, per group
    # the UCI study is unchanged by the second one
    uci = render(results).split("## Datasets")[1]
    assert text.split("## Datasets")[1].split("## Toy setting")[0] == uci


def test_studies_section_says_what_was_not_run(results: Path, tmp_path: Path):
    studies = _toy_study(tmp_path)  # toy listed as run, but no results/toy folder
    text = render(results, studies=studies)
    assert "| `toy` | Toy losses under label noise (Doe 2030, Table 2) | not run: no results " \
           "(`toy/` missing) |" in text
    assert "not run: data not configured" in text and "Toy verdicts" not in text


def test_bad_claims_table_is_one_line(results: Path, tmp_path: Path):
    studies = _toy_study(tmp_path)
    spec = yaml.safe_load((tmp_path / "toy.yaml").read_text())
    spec["claims"][0]["rule"] = {"kind": "best_rank", "method": "gce"}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(LossbenchError, match=r"toy.yaml: claim 'gce_best': unknown rule kind "
                                             r"'best_rank'; known: beat_baseline, "):
        render(results, studies=studies)
    spec["claims"][0]["rule"] = {"kind": "lowest_mean_rank", "methods": ["gce"]}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(LossbenchError, match=r"rule lowest_mean_rank parameters \['methods'\]"):
        render(results, studies=studies)


def test_two_method_analyses_have_no_friedman_p_and_the_claim_is_not_tested():
    """`analyze` with two methods writes friedman.json with "applicable": false and a null p
    (issue 15): the report must say "not tested", not crash (found by the image smoke)."""
    from analysis.report.claims import RULES
    from analysis.report.read import friedman_p

    two = {"applicable": False, "p_value": None, "statistic": None, "n_methods": 2}
    assert friedman_p(two) is None
    verdict, evidence = RULES["friedman_p_below"].check({"resnet20": two}, "ce", None,
                                                        alpha=0.05)
    assert verdict is None and evidence.startswith("not tested")


def test_motivating_example_buckets_render_beside_the_papers_counts(tmp_path):
    from analysis.report import write_report

    study = tmp_path / "results" / "images" / "motivating_example"
    study.mkdir(parents=True)
    (study / "settings.json").write_text('{"epochs": 90}\n')
    (study / "scores.csv").write_text("dataset,arch,loss,seed,val_acc,test_acc\n"
                                      "cifar100,resnet32,ce,0,0.7,0.7\n")
    (study / "buckets.csv").write_text(
        "bucket,threshold,n_early,n_correct_late,pct\ncorrect,0.2,6000,5700,95.0\n"
        "wrong_py_above,0.2,700,280,40.0\nwrong_py_below,0.2,3300,99,3.0\n")
    table = tmp_path / "studies.csv"
    table.write_text("name,status,reason,claims\n"
                     "motivating_example,run,,motivating_example.yaml\n")
    out = write_report(tmp_path / "results", tmp_path / "README.md", None, None, paper=True,
                       studies=str(table))
    text = out.read_text()
    assert "6,000 → 5,700 (95.00 %)" in text and "6,766 → 6,482 (95.58 %)" in text
    assert "2,623 → 88 (3.35 %)" in text


TEXT_NOT_RUN = ("name,status,reason,claims\nuci,run,,mixing_uci.yaml\n"
                "mixing_table3,not run,data not configured: clothing_reviews "
                "(LOSSBENCH_CLOTHING_REVIEWS),mixing_table3.yaml\n"
                "mixing_glue,not run,data not configured: LOSSBENCH_GLUE,mixing_glue.yaml\n")


def test_text_studies_not_run_show_what_to_expect(results: Path, tmp_path: Path):
    """Without data: "not run: data not configured" in the studies table, and the paper's
    Table 3 (and what Fig. 2 will show) so a reader knows what a run is compared with."""
    table = tmp_path / "studies.csv"
    table.write_text(TEXT_NOT_RUN)
    text = render(results, studies=table)
    assert ("| `mixing_table3` | Mixing paper Table 3: LSTMs on Women's Clothing reviews "
            "(Battash, Hazan, Wolf (AAAI 2022), Table 3) | not run: data not configured: "
            "clothing_reviews (LOSSBENCH_CLOTHING_REVIEWS) |") in text
    preview = text.split("## `mixing_table3`: ")[1].split("## `mixing_glue`: ")[0]
    assert preview.startswith("Mixing paper Table 3: LSTMs on Women's Clothing reviews — not "
                              "run: data not configured")
    paper = pd.read_csv(REPO / "analysis" / "paper_tables" / "mixing_table3.csv")
    for row in paper.itertuples():  # every printed cell, in its model's row
        line = next(x for x in preview.splitlines() if f"| `{row.model}` |" in x)
        cell = f"{row.mean:.2f} ± {row.std:.2f}" if pd.notna(row.std) else f"{row.mean:.2f} ± ?"
        assert cell in line, (row.model, row.loss)
    assert "std printed '071'" in preview and "ours" not in preview and "Verdicts" not in preview
    glue = text.split("## `mixing_glue`: ")[1]
    assert "not run: data not configured: LOSSBENCH_GLUE" in glue
    assert "Dolan–Moré performance profile" in glue and "Official GLUE score" not in glue


def test_table3_run_sets_ours_under_each_paper_row(results: Path, tmp_path: Path):
    rng = np.random.default_rng(0)
    models = ["lstm_1x50", "lstm_1x75", "lstm_1x100", "lstm_2x50", "lstm_2x100"]
    losses = ["ce", "ce_el_0", "ce_el_0_05", "ce_el_0to05"]
    scores = pd.DataFrame([{"dataset": "clothing_reviews", "arch": m, "loss": loss, "seed": s,
                            "val_acc": 0.6, "test_acc": 0.6 + 0.02 * rng.random()}
                           for m in models for loss in losses for s in range(8)
                           if not (m == "lstm_2x100" and loss == "ce_el_0")])  # one cell missing
    folder = results / "text" / "mixing_table3"
    folder.mkdir(parents=True)
    scores.to_csv(folder / "scores.csv", index=False)
    (folder / "settings.json").write_text(json.dumps({"epochs": 50}))
    table = tmp_path / "studies.csv"
    table.write_text(TEXT_NOT_RUN.replace("mixing_table3,not run,data not configured: "
                                          "clothing_reviews (LOSSBENCH_CLOTHING_REVIEWS)",
                                          "mixing_table3,run,"))
    text = render(results, studies=table)
    part = text.split("### Table 3: the paper's and ours")[1].split("###")[0]
    lines = part.splitlines()
    for model in models:
        at = next(i for i, x in enumerate(lines) if f"| `{model}` | paper |" in x)
        ours = lines[at + 1]
        assert ours.startswith("|  |  | ours (test_acc) |")
        for k, loss in enumerate(losses):
            cell = ours.split(" | ")[3 + k].strip(" |")
            mine = 100 * scores[(scores["arch"] == model) & (scores["loss"] == loss)]["test_acc"]
            assert cell == (f"{mine.mean():.2f} ± {mine.std():.2f}" if len(mine) else "–")
    assert "over 8 seeds" in part
    assert "## `mixing_table3`: " not in text  # no preview once it has results
