"""`lossbench two-scale-curves` (analysis.two_scale): the two-scale paper's Fig. 9 and Figs. 4-6
from the files the real torch trainer writes (iterations.csv, predictions/*-hist.csv): seed
means and bootstrap CIs as numpy computes them, histogram counts summed over seeds, one line
naming a malformed file, and byte-identical reruns."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import two_scale as ts
from bench.cli import main
from bench.errors import LossbenchError
from bench.studies import FIGURES, load_study

REPO = Path(__file__).resolve().parents[2]
METHODS = ("one_scale", "two_scale(eta=0.01)")
SEEDS = (0, 1, 2)
OUTPUTS = ("two_scale_curves.csv", "two_scale_curves_linear.png", "two_scale_curves_linear.svg",
           "two_scale_hist.csv", "two_scale_hist_linear.png", "two_scale_hist_linear.svg")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs folder of two real jobs (one per method, as the study splits them): digits,
    linear, 3 seeds, 2 epochs, a record every 3 steps, histograms after epochs 1 and 2."""
    root = tmp_path_factory.mktemp("runs")
    for method in METHODS:
        job = root / f"digits__linear__{method.replace('(', '_').replace(')', '_')}"
        assert main(["train", "--dataset", "digits", "--model", "linear", "--losses", method,
                     "--lrs", "0.1", "--seeds", ",".join(map(str, SEEDS)), "--epochs", "2",
                     "--batch-size", "128", "--protocol", "random", "--eval-every", "3",
                     "--save-predictions-at", "1,2", "--trainer", "torch", "--device", "cpu",
                     "--threads", "1", "--no-progress", "--out", str(job)]) == 0
    return root


def _iterations(runs: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in sorted(runs.glob("*/iterations.csv"))])


def _synthetic(values: dict[str, list[float]], dataset: str = "d", arch: str = "a",
               iteration: int = 100) -> pd.DataFrame:
    """iterations.csv rows (the trainer's columns used here): one per seed, per method."""
    rows = [{"dataset": dataset, "arch": arch, "fold": 0, "seed": s, "loss": loss, "lr": 0.1,
             "iteration": iteration, "epoch": iteration / 10, "train_loss": 1.0,
             "batch_acc": v, "test_acc": v / 2}
            for loss, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_curves_are_the_seeds_mean_with_a_ci_around_it(runs):
    frames, _ = ts.read_jobs([runs])
    curves = ts.iteration_curves(frames)
    raw = _iterations(runs)
    assert list(curves.columns) == ts.CURVE_COLUMNS
    assert set(curves["loss"]) == set(METHODS)
    assert len(curves) == raw.groupby(["loss", "iteration"]).ngroups and len(curves) > 4
    for _, row in curves.iterrows():
        part = raw[(raw["loss"] == row["loss"]) & (raw["iteration"] == row["iteration"])]
        assert row["n_seeds"] == len(SEEDS) and row["n_missing"] == 0
        for metric in ts.METRICS:
            values = 100 * part[metric].to_numpy()
            assert row[f"{metric}_mean"] == pytest.approx(np.mean(values), abs=1e-9)
            assert values.min() - 1e-9 <= row[f"{metric}_low"] <= row[f"{metric}_mean"]
            assert row[f"{metric}_mean"] <= row[f"{metric}_high"] <= values.max() + 1e-9


def test_ci_is_a_percentile_bootstrap_over_seeds():
    rng = np.random.default_rng(7)
    many = rng.uniform(0.2, 0.9, 30).tolist()
    frame = pd.concat([_synthetic({"two": [0.2, 0.6], "flat": [0.5, 0.5, 0.5]}),
                       _synthetic({"many": many}, iteration=200)])
    curves = ts.iteration_curves({"f": frame}).set_index("loss")
    # two seeds: the resampled means are a, (a+b)/2 or b -> the 2.5/97.5 % points are a and b
    assert curves.loc["two", ["batch_acc_mean", "batch_acc_low", "batch_acc_high"]].tolist() \
        == pytest.approx([40.0, 20.0, 60.0])
    assert curves.loc["two", ["test_acc_low", "test_acc_high"]].tolist() == \
        pytest.approx([10.0, 30.0])
    assert curves.loc["flat", ["batch_acc_low", "batch_acc_high"]].tolist() == \
        pytest.approx([50.0, 50.0])
    # 30 seeds: numpy's own percentile bootstrap of the mean (many resamples) agrees
    values = 100 * np.array(many)
    means = values[rng.integers(0, 30, (50_000, 30))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    assert curves.loc["many", "batch_acc_mean"] == pytest.approx(values.mean())
    assert curves.loc["many", "batch_acc_low"] == pytest.approx(low, abs=0.4)
    assert curves.loc["many", "batch_acc_high"] == pytest.approx(high, abs=0.4)
    assert high - low > 5  # a real interval, not a degenerate one


def test_the_bootstrap_is_seeded():
    frame = _synthetic({"m": np.random.default_rng(3).uniform(0, 1, 20).tolist()})
    first, again = (ts.iteration_curves({"f": frame}) for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    other = ts.iteration_curves({"f": frame}, seed=1)
    assert other["batch_acc_mean"].equals(first["batch_acc_mean"])
    assert not other["batch_acc_low"].equals(first["batch_acc_low"])


def test_a_diverged_seed_is_counted_missing_and_left_out_of_the_mean():
    frame = _synthetic({"m": [0.2, 0.4, np.nan]})
    row = ts.iteration_curves({"f": frame}).iloc[0]
    assert (row["n_seeds"], row["n_missing"]) == (3, 1)
    assert row["batch_acc_mean"] == pytest.approx(30.0)


def test_histograms_sum_the_seeds_files(runs):
    _, hists = ts.read_jobs([runs])
    assert len(hists) == len(METHODS) * len(SEEDS) * 2  # 2 saved epochs
    table = ts.histogram_table(hists)
    assert list(table.columns) == ts.HIST_TABLE_COLUMNS
    assert set(table["epoch"]) == {1, 2} and (table["n_runs"] == len(SEEDS)).all()
    for method in METHODS:
        job = next(p for p in runs.iterdir() if (p / "summary.csv").exists()
                   and pd.read_csv(p / "summary.csv")["loss"].iloc[0] == method)
        for epoch in (1, 2):
            files = sorted((job / "predictions").glob(f"*-epoch{epoch}-hist.csv"))
            expected = sum(pd.read_csv(f)["count"].to_numpy() for f in files)
            got = table[(table["loss"] == method) & (table["epoch"] == epoch)]
            assert got["count"].tolist() == expected.tolist()
            preds = [pd.read_csv(f) for f in sorted(
                (job / "predictions").glob(f"*-epoch{epoch}.csv.gz"))]
            by = got.groupby("quantity")["count"].sum()
            assert by["max_p"] == by["p_y"] == sum(len(p) for p in preds)
            assert by["delta_p"] == sum(int((p["correct"] == 0).sum()) for p in preds)


def test_cli_writes_every_output_and_reruns_give_identical_bytes(runs, tmp_path):
    runs = shutil.copytree(runs, tmp_path / "runs")
    job = sorted(runs.iterdir())[0]  # 9 more seeds (values shifted): non-degenerate CIs
    table = pd.read_csv(job / "iterations.csv")
    more = [table.assign(seed=table["seed"] + 3 * k,
                         batch_acc=(table["batch_acc"] + 0.013 * k) % 1,
                         test_acc=(table["test_acc"] + 0.007 * k) % 1) for k in range(1, 4)]
    pd.concat([table, *more]).to_csv(job / "iterations.csv", index=False)
    outs = [tmp_path / "a", tmp_path / "b"]
    jobs = [str(p) for p in sorted(runs.iterdir())]
    assert main(["two-scale-curves", str(runs), "--arch", "linear", "--out-dir",
                 str(outs[0])]) == 0
    assert main(["two-scale-curves", *jobs, "--arch", "linear", "--out-dir", str(outs[1])]) == 0
    assert sorted(p.name for p in outs[0].iterdir()) == sorted(OUTPUTS)
    for name in OUTPUTS:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    curves = pd.read_csv(outs[0] / "two_scale_curves.csv")
    assert set(curves["arch"]) == {"linear"} and set(curves["loss"]) == set(METHODS)


def test_missing_iterations_column_is_one_line_naming_the_file(runs, tmp_path, capsys):
    job = tmp_path / "job"
    shutil.copytree(next(runs.iterdir()), job)
    table = pd.read_csv(job / "iterations.csv").drop(columns=["test_acc"])
    table.to_csv(job / "iterations.csv", index=False)
    with pytest.raises(LossbenchError, match=r"job/iterations\.csv: missing column\(s\) test_acc"):
        ts.read_jobs([job])
    assert main(["two-scale-curves", str(job), "--arch", "linear", "--out-dir",
                 str(tmp_path / "out")]) == 2
    assert "iterations.csv: missing column(s) test_acc" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(LossbenchError, match="f.csv: missing column"):
        ts.iteration_curves({"f.csv": table})


def test_missing_hist_column_is_one_line_naming_the_file(runs, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(next(runs.iterdir()), job)
    bad = sorted((job / "predictions").glob("*-hist.csv"))[1]
    pd.read_csv(bad).drop(columns=["count"]).to_csv(bad, index=False)
    _, hists = ts.read_jobs([job])
    with pytest.raises(LossbenchError, match=rf"{bad.name}: missing column\(s\) count"):
        ts.histogram_table(hists)


def test_hist_files_of_a_job_with_several_methods_cannot_be_attributed(runs, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(next(runs.iterdir()), job)
    table = pd.read_csv(job / "iterations.csv")
    table.loc[table["seed"] == 1, "loss"] = "ce"
    table.to_csv(job / "iterations.csv", index=False)
    with pytest.raises(LossbenchError, match=r"job: runs of 2 \(dataset, arch, method\)"):
        ts.read_jobs([job])


def test_a_run_in_two_files_and_an_absent_arch_are_refused(runs):
    frames, hists = ts.read_jobs([runs])
    first = next(iter(frames.values()))
    with pytest.raises(LossbenchError, match="is in more than one file"):
        ts.iteration_curves({"a": first, "b": first})
    with pytest.raises(LossbenchError, match="no rows for arch='lenet5'; archs present: linear"):
        ts.for_arch(frames, hists, "lenet5")


def test_figures_draw_a_panel_per_dataset_and_metric_and_a_line_per_method():
    frame = pd.concat([_synthetic({"one_scale": [0.5, 0.6], "two_scale(eta=0.01)": [0.7, 0.8]},
                                  dataset=d, iteration=i)
                       for d in ("digits", "optical_img") for i in (100, 200, 300)])
    curves = ts.iteration_curves({"f": frame})
    fig = ts.draw_iteration_curves(curves, "a", {"one_scale": "One-scale"})
    axes = fig.get_axes()
    assert len(axes) == 2 * len(ts.METRICS)
    assert all(len(ax.get_lines()) == 2 for ax in axes)
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == \
        ["One-scale", "two_scale(eta=0.01)"]
    hist = pd.DataFrame([{"dataset": "d", "arch": "a", "loss": m, "epoch": e,
                          "quantity": q, "lo": 0.0, "hi": 1.0, "n_runs": 2, "count": 3}
                         for m in ts.HIST_METHODS for e in (5, 9) for q in ts.QUANTITIES])
    assert ts.last_epochs(hist, ts.HIST_METHODS) == {"d": 9}
    assert len(ts.draw_histograms(hist, "a").get_axes()) == len(ts.QUANTITIES)
    with pytest.raises(LossbenchError, match="no 'ce'; methods present"):
        ts.draw_histograms(hist, "a", ("ce", "one_scale"))


def test_the_digits_study_asks_for_the_figures():
    assert "two_scale_curves" in FIGURES
    study = load_study("two_scale_digits", REPO / "config" / "studies")
    assert study.config["figures"] == ["two_scale_curves"]
    assert study.config["job"] == ["dataset", "model", "loss"]  # hist files are attributable
