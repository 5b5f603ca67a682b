"""Escaping-efficiency verdicts: per-dataset comparisons, sign test, figure, CLI."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.escaping import dataset_traces, parse_claims, sign_tests, trace_figure
from bench.cli import main
from bench.errors import LossbenchError


def _table(n_datasets=10, flip=(0,), diverged=()):
    """mix > ce on every dataset but those in ``flip``; ce > el everywhere; 2 epochs."""
    rows = []
    for d in range(n_datasets):
        for epoch in (10, 40):
            ce = 1.0 + d + epoch / 100
            traces = {"ce": ce, "el": ce / 10, "mix": ce / 2 if d in flip else ce * 3}
            for loss, trace in traces.items():
                rows.append({"dataset": f"d{d}", "model": "linear", "loss": loss,
                             "epoch": epoch, "trace": trace,
                             "diverged": (d, loss) in diverged})
    return pd.DataFrame(rows)


def test_sign_test_fraction_and_p_value():
    verdict = sign_tests(_table(), [("mix", "ce"), ("ce", "el")])
    row = verdict[(verdict["a"] == "mix") & (verdict["epoch"] == "all")].iloc[0]
    assert (row["n_datasets"], row["n_holds"], row["fraction"]) == (10, 9, 0.9)
    assert row["p_value"] == pytest.approx(11 / 1024, rel=1e-12)  # P(X >= 9), X ~ B(10, 1/2)
    ce_el = verdict[(verdict["a"] == "ce") & (verdict["epoch"] == "10")].iloc[0]
    assert ce_el["n_holds"] == 10 and ce_el["p_value"] == pytest.approx(1 / 1024)
    assert list(verdict["epoch"][:3]) == ["10", "40", "all"]


def test_diverged_runs_leave_their_dataset_out():
    table = _table(diverged={(3, "mix")})
    traces = dataset_traces(table)
    assert traces[(traces["dataset"] == "d3") & (traces["loss"] == "mix")]["trace"].isna().all()
    row = sign_tests(table, [("mix", "ce")]).query("epoch == 'all'").iloc[0]
    assert row["n_datasets"] == 9 and row["n_holds"] == 8


def test_unknown_claim_loss_and_bad_claims():
    with pytest.raises(LossbenchError, match="no probe rows for loss 'focal'"):
        sign_tests(_table(), [("focal", "ce")])
    with pytest.raises(LossbenchError, match="--claims: expected A>B"):
        parse_claims("mix<ce")
    assert parse_claims(" a>b, c>d ") == [("a", "b"), ("c", "d")]


def test_figure_has_one_panel_per_model_and_one_line_per_loss():
    table = pd.concat([_table(), _table().assign(model="mlp")])
    fig = trace_figure(table)
    assert [ax.get_title() for ax in fig.axes] == ["linear", "mlp"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["ce", "el", "mix"]


def test_cli_writes_verdict_and_figure(tmp_path, capsys):
    paths = []
    for k, part in enumerate((_table().query("dataset < 'd5'"), _table().query("dataset >= 'd5'"))):
        paths.append(tmp_path / f"p{k}.csv")
        part.to_csv(paths[-1], index=False)
    out = tmp_path / "out"
    assert main(["escaping-verdict", "--in", *map(str, paths), "--claims", "mix>ce",
                 "--out", str(out)]) == 0
    verdict = pd.read_csv(out / "verdict.csv")
    assert verdict.query("epoch == 'all'")["fraction"].item() == 0.9
    assert (out / "traces.png").stat().st_size > 0 and (out / "dataset_traces.csv").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,loss\nx,ce\n")
    assert main(["escaping-verdict", "--in", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing columns" in err and err.count("\n") == 1
