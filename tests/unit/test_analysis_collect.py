"""`lossbench collect` and `lossbench select` on synthetic job folders.

collect_expected/ holds the bytes the former workflow script (workflow/scripts/collect.py, at
commit dcffb89) wrote for the jobs of `_collect_jobs.make_runs`: the command must write the same.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from _collect_jobs import make_runs

from analysis.collect import OUTPUTS
from bench.cli import main

EXPECTED = Path(__file__).parent / "collect_expected"


def _assert_same_bytes(out: Path) -> None:
    for name in OUTPUTS:
        ours, theirs = (out / name).read_bytes(), (EXPECTED / name).read_bytes()
        if name.endswith(".gz"):  # the header must match; the deflate stream is zlib's business
            assert ours[:10] == theirs[:10], name
            ours, theirs = gzip.decompress(ours), gzip.decompress(theirs)
        assert ours == theirs, name


def test_collect_from_runs_dir_matches_the_former_script(tmp_path: Path):
    make_runs(tmp_path / "runs")
    assert main(["collect", "--runs", str(tmp_path / "runs"), "--out",
                 str(tmp_path / "klambauer4")]) == 0  # protocol = the out folder's name
    _assert_same_bytes(tmp_path / "klambauer4")
    scores = pd.read_csv(tmp_path / "klambauer4" / "scores.csv")
    assert (scores["n_folds"] == 2).all() and scores["test_acc"].isna().sum() == 1


def test_collect_from_file_lists_matches_the_former_script(tmp_path: Path):
    jobs = make_runs(tmp_path / "runs")
    files = {flag: [str(j / name) for j in jobs] for flag, name in (
        ("--summaries", "summary.csv"), ("--epochs", "epochs.csv"),
        ("--configs", "config.json"), ("--benchmarks", "benchmark.tsv"))}
    args = [a for flag, paths in files.items() for a in (flag, *paths)]
    out = tmp_path / "out"
    assert main(["collect", *args, "--out", str(out), "--protocol", "klambauer4"]) == 0
    _assert_same_bytes(out)


@pytest.mark.parametrize("args", [["--runs", "{runs}"], ["--summaries"]])
def test_no_job_outputs_is_one_line_and_exit_2(tmp_path: Path, capsys, args):
    runs = tmp_path / "runs"
    runs.mkdir()
    argv = ["collect", *(a.format(runs=runs) for a in args), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lossbench collect: error: ") and len(err.splitlines()) == 1
    assert (str(runs) if "--runs" in args else "--summaries") in err
    assert "concatenate" not in err and not (tmp_path / "out").exists()


def test_bad_job_table_names_the_file(tmp_path: Path, capsys):
    jobs = make_runs(tmp_path / "runs")
    summary = jobs[1] / "summary.csv"
    pd.read_csv(summary).drop(columns="test_acc").to_csv(summary, index=False)
    assert main(["collect", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{summary}: missing column(s) test_acc" in err


def test_select_slices_arch_and_seed_and_the_paper_rows(tmp_path: Path, capsys):
    make_runs(tmp_path / "runs")
    main(["collect", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "p")])
    scores = str(tmp_path / "p" / "scores.csv")
    out, paper = tmp_path / "sel.csv", tmp_path / "paper.csv"
    assert main(["select", scores, "--arch", "mlp", "--selection", "seed1", "--out", str(out),
                 "--paper-out", str(paper)]) == 0
    sel = pd.read_csv(out)
    # 3 datasets x 2 losses, less zoo/el whose every lr diverged (named in the output)
    assert len(sel) == 5 and set(sel["arch"]) == {"mlp"} and set(sel["seed"]) == {1}
    assert "no score (every lr diverged): zoo el seed 1" in capsys.readouterr().out
    assert (sel["test_acc_pct"] == 100 * sel["test_acc"]).all()
    table = pd.read_csv(paper)  # the packaged Table 4 of the mixing paper, mlp rows
    assert list(table.columns) == ["method", "wins", "delta", "mean_rank"]
    assert table.set_index("method").loc["ce_el_0to05", "mean_rank"] == 2.37

    assert main(["select", scores, "--arch", "mlp", "--selection", "mean", "--out",
                 str(out)]) == 0
    assert len(pd.read_csv(out)) == 11
    assert main(["select", scores, "--arch", "resnet", "--selection", "mean", "--out",
                 str(out)]) == 2
    assert main(["select", scores, "--arch", "mlp", "--selection", "best", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "no rows for arch=resnet, mean" in err[0]
    assert "'mean', 'blocks', 'last' or 'seed<N>'" in err[1]


def test_slim_epochs_keeps_keys_diverged_and_the_named_metrics():
    """A study's `epoch_metrics` keeps its curves and drops the other per-epoch columns."""
    import pandas as pd
    import pytest

    from analysis.collect import slim_epochs
    from bench.errors import LossbenchError

    epochs = pd.DataFrame({"dataset": ["a"], "loss": ["ce"], "lr": [0.1], "epoch": [1],
                           "train_loss": [0.5], "diverged": [False], "train_acc": [0.7],
                           "val_acc": [0.6], "test_top2": [0.9]})
    slim = slim_epochs(epochs, ["val_acc", "train_loss"])
    assert list(slim.columns) == ["dataset", "loss", "lr", "epoch", "diverged", "val_acc",
                                  "train_loss"]
    assert slim_epochs(epochs, []) is epochs
    with pytest.raises(LossbenchError, match="test_acc"):
        slim_epochs(epochs, ["test_acc"])


def test_timings_split_the_job_time_when_jobs_report_their_training_time(tmp_path: Path):
    """Jobs of today's `lossbench train` report train_seconds per arch and wall_time_s: the
    timings carry them and the report splits the summed job time (training, tables and
    writes, start-up) and counts the cores' idle time."""
    import json

    from analysis.report.render import _time_split

    runs = make_runs(tmp_path / "runs")
    for i, run in enumerate(runs):
        config = json.loads((run / "config.json").read_text())
        config["train_seconds"] = {"linear": 0.25 * i, "mlp": 0.5 * i}
        (run / "config.json").write_text(json.dumps(config))
        (run / "benchmark.tsv").touch()  # keeps the file's mtime order: end = mtime
    assert main(["collect", "--runs", str(tmp_path / "runs"), "--out",
                 str(tmp_path / "klambauer4")]) == 0
    t = pd.read_csv(tmp_path / "klambauer4" / "timings.csv")
    assert t["train_seconds"].tolist() == [0.75 * i for i in range(len(runs))]
    assert t["run_seconds"].tolist() == [1.5 * i for i in range(len(runs))]
    elapsed = float(t["end"].max() - t["start"].min())
    text = " ".join(_time_split(t, elapsed))
    total = t["seconds"].sum()
    share = round(100 * (total - t["run_seconds"].sum()) / total)
    assert "process start-up, imports, data loading" in text and f"({share} %)" in text
    # every job ends now (touched), so all overlap: as many at a time as there are jobs
    assert f"Idle with {len(runs)} jobs at a time" in text
    # an older job without train_seconds: no split (never a made-up number)
    assert _time_split(t.assign(run_seconds=float("nan")), elapsed) == []
