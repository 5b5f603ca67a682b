"""A dataset's official metric (GLUE: CoLA MCC, MRPC/QQP F1, else accuracy) as a per-epoch
``<split>_score``: accumulated from per-class counts over batches and chunks by both trainers,
equal to scikit-learn on the same predictions; selection by ``val_score``; the last epoch under
``train_dev``; the columns through collect and select; the GLUE pipeline on generated TSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_text_data as text_files
import torch
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from analysis.collect import fold_average
from analysis.select import select_scores
from bench.data import ArrayDataset, dataset_metric, protocol_epoch
from bench.errors import LossbenchError
from bench.spec import RunSpec
from bench.train import SCORES, StackSpec, train_specs
from bench.train._metrics import metric_means, metric_names, metric_sums
from bench.train._stack import Stack
from bench.train._tables import summary_table

SKLEARN = {"accuracy": accuracy_score, "f1": f1_score, "mcc": matthews_corrcoef}
QUIET = {"log": lambda msg: None}


def _scores(logits: torch.Tensor, y: torch.Tensor, C: int, score: str, batch: int) -> dict:
    """The metric_names columns of ``logits`` accumulated over batches of ``batch`` rows."""
    total = sum(metric_sums(logits[a:a + batch], y[a:a + batch], C, score=score)
                for a in range(0, len(y), batch))
    values = metric_means(total, len(y), C, score)
    return dict(zip(metric_names(C, score=score), values.tolist(), strict=True))


@pytest.mark.parametrize("score, C", [("mcc", 2), ("mcc", 3), ("f1", 2), ("accuracy", 3)])
def test_scores_summed_over_batches_equal_sklearn(score, C):
    g = torch.Generator().manual_seed(C)
    for n, batch in ((1001, 97), (50, 7)):
        # logits leaning to the truth: predictions right ~70 % of the time, every class seen
        y = torch.randint(0, C, (n,), generator=g)
        logits = torch.randn(n, C, generator=g) + 1.2 * torch.nn.functional.one_hot(y, C)
        got = _scores(logits, y, C, score, batch)
        pred = logits.argmax(-1).numpy()
        want = SKLEARN[score](y.numpy(), pred)
        assert 0.1 < abs(want) < 0.95  # neither degenerate nor perfect
        assert got["score"] == pytest.approx(want, rel=1e-12, abs=1e-12)
        # the other columns are those of a run without a score
        plain = dict(zip(metric_names(C), (metric_sums(logits, y, C) / n).tolist(), strict=True))
        assert {k: got[k] for k in plain} == pytest.approx(plain, rel=1e-6)


def test_degenerate_predictions_score_as_sklearn():
    y = torch.tensor([0, 1, 0, 1, 1])
    one_class = torch.tensor([[2.0, 0.0]]).expand(5, 2)  # always class 0
    got = _scores(one_class, y, 2, "mcc", 2)
    assert got["score"] == matthews_corrcoef(y, np.zeros(5)) == 0.0
    # F1 with no positive predicted and none true: 0 (sklearn's zero_division=0)
    negatives = torch.zeros(5, dtype=torch.int64)
    assert _scores(one_class, negatives, 2, "f1", 3)["score"] == 0.0
    assert f1_score(negatives, np.zeros(5), zero_division=0.0) == 0.0


@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_stacked_engine_layouts_count_per_model(arch):
    """Linear stacks evaluate batch-major ([S, n, M, C], samples on dim 1) and kept epochs
    add a leading dim: every layout must count each model's own predictions."""
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.normal(size=(300, 6)).astype(np.float32))
    y = torch.from_numpy((X[:, 0] + 0.5 * X[:, 1] > 0).numpy().astype(np.int64))
    from bench.losses import make_loss

    spec = StackSpec(arch=arch, losses=[make_loss("ce"), make_loss("ce_el_0")], lrs=[0.1, 0.01],
                     seeds=[0, 3], score="mcc")
    stack = Stack(spec, 6, 2)
    logits, _ = stack.forward(X)  # [S, M, n, C]
    values = stack.evaluate(X, y[None, None])  # [S, L, R, n_metrics]
    kept = stack.evaluate_kept(stack.flat[None], X, y[None, None])[0]
    k = metric_names(2, score="mcc").index("score")
    checked = 0
    for s in range(2):
        for m in range(4):
            pred = logits[s, m].argmax(-1).numpy()
            want = matthews_corrcoef(y.numpy(), pred)
            checked += pred.min() != pred.max()
            assert values[s, m // 2, m % 2, k].item() == pytest.approx(want, abs=1e-12)
            assert kept[s, m // 2, m % 2, k].item() == pytest.approx(want, abs=1e-12)
    assert checked >= 4  # random inits predict both classes on most models


def test_unknown_metric_is_one_line():
    ds = ArrayDataset("toy", np.zeros((10, 2), np.float32), np.arange(10) % 2, 2,
                      meta={"metric": "auc"})
    spec = RunSpec(dataset="toy", model="linear", protocol="random", epochs=1, device="cpu",
                   progress=False)
    with pytest.raises(LossbenchError, match=r"dataset 'toy': declared metric: unknown metric "
                                             r"'auc'\. Known metrics: accuracy, f1, mcc"):
        train_specs([spec], ds, trainer="torch", **QUIET)
    from bench.data.text import GLUE_TASKS
    from bench.data.text.metrics import METRICS

    assert set(SCORES) >= set(METRICS) | {t.metric for t in GLUE_TASKS.values()}


# -- selection ----------------------------------------------------------------------------------
def _arrays(val_acc, val_score, test_score) -> dict[str, np.ndarray]:
    shape = (len(val_acc), 1, 1, 1)
    out = {"train_loss": np.ones(shape), "diverged": np.zeros(shape, bool)}
    for key, values in (("val_acc", val_acc), ("test_acc", val_acc), ("val_score", val_score),
                        ("test_score", test_score)):
        out[key] = np.asarray(values, float).reshape(shape)
    return out


def test_selection_uses_val_score_and_train_dev_takes_the_last_epoch():
    arrays = _arrays([0.6, 0.9, 0.7], [0.5, 0.1, 0.4], [0.3, 0.2, 0.8])
    args = ("glue_cola", "bert", 0, [0], ["ce"], [2e-5])
    best = summary_table(arrays, *args).iloc[0]
    assert best["best_epoch"] == 0 and best["test_score"] == 0.3  # val_acc would pick 1
    last = summary_table(arrays, *args, epoch_rule="last").iloc[0]
    assert last["best_epoch"] == 2 and last["test_score"] == 0.8
    without = {k: v for k, v in arrays.items() if "score" not in k}
    assert summary_table(without, *args).iloc[0]["best_epoch"] == 1  # UCI: val_acc as before
    arrays["val_score"][2] = np.nan  # diverged in the last epoch: no score, never the best
    assert summary_table(arrays, *args, epoch_rule="last").iloc[0]["best_epoch"] == -1
    assert protocol_epoch("train_dev") == "last" and protocol_epoch("random") == "best"
    assert dataset_metric("glue_cola") == "mcc" and dataset_metric("iris") is None


def _toy(metric: str | None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=120) > 0.4).astype(np.int64)  # imbalanced 2 classes
    return ArrayDataset("toy", X, y, 2, meta={"metric": metric} if metric else {})


@pytest.mark.parametrize("trainer", ["stacked", "torch"])
def test_both_trainers_record_the_score_and_select_by_it(trainer):
    spec = RunSpec(dataset="toy", model="linear", protocol="random", epochs=4, batch_size=8,
                   lr=0.05, device="cpu", progress=False)
    specs = [spec.replace(loss=loss, lr=lr) for loss in ("ce", "ce_el_0") for lr in (0.05, 0.5)]
    result = train_specs(specs, _toy("mcc"), trainer=trainer, **QUIET)
    epochs, summary = result.epochs, result.summary
    assert {"train_score", "val_score", "test_score"} <= set(epochs.columns)
    for row in summary.itertuples():  # the selected (lr, epoch): best val_score, ties later
        runs = epochs[epochs["loss"] == row.loss]
        best = runs["val_score"].max()
        assert row.val_score == best
        at = runs[(runs["lr"] == row.lr) & (runs["epoch"] == row.best_epoch)]
        assert at["test_score"].item() == row.test_score
    plain = train_specs(specs, _toy(None), trainer=trainer, **QUIET)
    assert not any("score" in c for c in plain.epochs.columns)  # no metric: tables unchanged
    pd.testing.assert_frame_equal(plain.epochs, epochs.drop(
        columns=["train_score", "val_score", "test_score"]))


def test_collect_and_select_carry_the_official_score():
    summary = pd.DataFrame({"dataset": "glue_mrpc", "arch": "bert", "loss": ["ce", "ce"],
                            "seed": 0, "fold": [0, 1], "lr": 2e-5, "best_epoch": 5,
                            "val_acc": [0.8, 0.7], "test_acc": [0.8, 0.7],
                            "val_score": [0.9, 0.7], "test_score": [0.85, 0.75],
                            "diverged": False})
    scores = fold_average(summary)
    assert scores["test_score"].item() == pytest.approx(0.8)
    picked = select_scores(scores, "bert", "mean", **QUIET)
    assert picked["test_score_pct"].item() == pytest.approx(80.0)
    assert picked["val_score_pct"].item() == pytest.approx(80.0)
    assert "test_score_pct" not in select_scores(fold_average(summary.drop(
        columns=["val_score", "test_score"])), "bert", "mean", **QUIET).columns


# -- GLUE through the real loaders and the torch trainer ------------------------------------------
MARKERS = {"0": "bad", "1": "good", "entailment": "yes", "neutral": "who",
           "contradiction": "not", "not_entailment": "won"}
FILLERS = ["film", "cat", "sat", "mat", "what"]


def write_learnable_glue(root: Path, monkeypatch, n_train: int, n_dev: int) -> None:
    """``write_glue``'s files (the official TSV layouts) whose first sentence starts with a
    word of its label, except every fifth row (another label's word): a tiny BERT learns it in
    a few epochs and then predicts both classes, right ~80 % of the time."""
    marks = list(MARKERS.values())
    row = text_files._glue_row

    def learnable_row(task, split, i, label, rng):
        word = MARKERS[label] if i % 5 else marks[(marks.index(MARKERS[label]) + 1) % 6]
        with monkeypatch.context() as m:
            m.setattr(text_files, "_sentence",
                      lambda rng, k=4: " ".join([word, *rng.choice(FILLERS, k - 1)]))
            return row(task, split, i, label, rng)

    with monkeypatch.context() as m:
        m.setattr(text_files, "_glue_row", learnable_row)
        text_files.write_glue(root, n_train=n_train, n_dev=n_dev)


@pytest.mark.slow
def test_glue_scores_of_the_pipeline_equal_sklearn_on_its_predictions(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    from bench.data import get_dataset
    from bench.models.text import model_params

    folder = text_files.write_vocab_txt(tmp_path / "bert", text_files.GLUE_WORDS)
    config = transformers.BertConfig(
        vocab_size=len((folder / "vocab.txt").read_text().split()), hidden_size=16,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(folder))
    monkeypatch.setenv("LOSSBENCH_BERT", str(folder))
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    write_learnable_glue(tmp_path / "glue", monkeypatch, n_train=60, n_dev=30)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task, metric in (("cola", "mcc"), ("mrpc", "f1"), ("mnli", "accuracy")):
            ds = get_dataset(f"glue_{task}", source=tmp_path / "glue")
            spec = RunSpec(dataset=ds.name, model="bert", protocol="train_dev", epochs=8,
                           batch_size=8, lr=1e-3, optimizer="adam", device="cpu",
                           progress=False, model_params=model_params(ds),
                           save_predictions_at=(4, 8))
            out = train_specs([spec], ds, trainer="torch", checkpoint_dir=tmp_path / task / "ck",
                              **QUIET)
            runs, row = out.epochs, out.summary.iloc[0]
            assert ds.meta["metric"] == metric and row["best_epoch"] == 7  # train_dev: last
            mixed = 0
            for epoch in (4, 8):
                pred = pd.read_csv(tmp_path / task / "predictions" /
                                   f"{spec.run_id}-epoch{epoch}.csv.gz")
                want = SKLEARN[metric](pred["y"], pred["argmax"])
                got = runs[runs["epoch"] == epoch - 1]
                assert got["test_score"].item() == pytest.approx(want, rel=1e-6), (task, epoch)
                assert got["test_acc"].item() == pytest.approx(accuracy_score(
                    pred["y"], pred["argmax"]), rel=1e-6)
                mixed += pred["argmax"].nunique() > 1 and 0 < want < 1
            assert row["test_score"] == runs["test_score"].iloc[-1]
            assert mixed  # some saved epoch predicts several classes, imperfectly
    finally:
        torch.set_num_threads(threads)


def test_glue_analysis_profiles_the_tasks_by_their_official_score(tmp_path):
    """study_analyze's command on mixing_glue's selected scores: the Dolan–Moré profile (Fig. 2)
    is over the seven tasks, seed-averaged, from ``score:`` (test_score_pct), not accuracy."""
    from bench.cli import main
    from bench.studies import load_study

    study = load_study("mixing_glue", Path(__file__).resolve().parents[2] / "config" / "studies")
    rng = np.random.default_rng(0)
    methods = ["ce", "ce_el_0", "ce_el_0_05(rule=paper)", "ce_el_0to05(rule=paper)"]
    rows = []
    for task in study.datasets:
        for m, method in enumerate(methods):
            for seed in study.config["seeds"]:
                acc = 0.8 + 0.01 * m + 0.001 * rng.normal()  # accuracy: the last method best
                rows.append({"dataset": task, "arch": "bert", "loss": method, "seed": seed,
                             "val_acc": acc, "test_acc": acc, "diverged": False,
                             "test_score": 0.5 + 0.05 * rng.random(), "val_score": 0.0})
    scores = select_scores(pd.DataFrame(rows), "bert", "mean", **QUIET)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    assert main(["analyze", str(tmp_path / "scores.csv"), "--out", str(tmp_path / "out"),
                 "--dataset-col", "dataset", "--method-col", "loss", "--score-col",
                 study.score_col, "--baseline", "ce", "--average-over", "seed",
                 "--drop-incomplete"]) == 0
    profile = pd.read_csv(tmp_path / "out" / "performance_profile.csv", index_col="tau")
    means = scores.groupby(["dataset", "loss"])["test_score_pct"].mean().unstack()
    best = means.eq(means.max(axis=1), axis=0).mean()  # share of tasks where each is best
    assert profile.loc[1.0].to_dict() == pytest.approx(best.to_dict())
    assert best["ce_el_0to05(rule=paper)"] < 1  # by accuracy it would be best on every task
    tau = float(profile.index[profile.index < 1][-1])  # the last step below 1: ratios count
    ratio = means.div(means.max(axis=1), axis=0)
    assert profile.loc[tau].to_dict() == pytest.approx((ratio >= tau).mean().to_dict())
