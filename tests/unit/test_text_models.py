"""Text models: the five LSTM configurations (parameter counts, packing makes padding
irrelevant), a tiny randomly initialised BERT from a local folder (seeded head, padding), and
2-epoch ``fit_torch`` runs of both on generated Clothing Reviews / GLUE files through the real
loaders, scored from the trainer's predictions files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_text_data import GLUE_WORDS, write_glue, write_reviews, write_vocab_txt

from bench.data import get_dataset
from bench.data.text.metrics import score_predictions
from bench.errors import LossbenchError
from bench.models import create_model, list_models
from bench.models.text import LSTM_CONFIGS, model_params
from bench.spec import RunSpec
from bench.train import fit_torch

QUIET = {"log": lambda msg: None}


pytestmark = pytest.mark.usefixtures("one_thread")


# -- LSTMs ----------------------------------------------------------------------------------------
def test_lstm_configs_are_the_papers_five():
    assert [m for m in list_models("text") if m.startswith("lstm")] == [
        "lstm_1x50", "lstm_1x75", "lstm_1x100", "lstm_2x50", "lstm_2x100"]
    V, C = 1000, 5
    for name, (layers, h) in LSTM_CONFIGS.items():
        model = create_model(name, input_shape=(40,), n_classes=C, seed=0, vocab_size=V)
        # embedding V x E (E = H); per layer 4H x (input + H) weights and two 4H biases
        lstm = sum(4 * h * ((h if layer else h) + h) + 8 * h for layer in range(layers))
        assert sum(p.numel() for p in model.parameters()) == V * h + lstm + h * C + C, name
        assert model.lstm.num_layers == layers and not model.lstm.bidirectional


def _batch(rng: np.random.Generator, lengths: list[int], width: int) -> torch.Tensor:
    x = torch.zeros(len(lengths), width, dtype=torch.int64)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.from_numpy(rng.integers(2, 50, n))
    return x


def test_lstm_padding_changes_nothing():
    model = create_model("lstm_2x50", input_shape=(12,), n_classes=5, seed=3, vocab_size=50)
    model.eval()
    rng = np.random.default_rng(0)
    lengths = [12, 3, 7, 1, 9]
    x = _batch(rng, lengths, 12)
    with torch.no_grad():
        z = model(x)
        wider = torch.cat([x, torch.zeros(5, 20, dtype=torch.int64)], dim=1)
        torch.testing.assert_close(model(wider), z, rtol=0, atol=1e-6)
        for i, n in enumerate(lengths):  # each review alone, no padding at all
            torch.testing.assert_close(model(x[i:i + 1, :n]), z[i:i + 1], rtol=0, atol=1e-6)
        # without packing the last state would read the pads: different for the short rows
        _, (h, _) = model.lstm(model.embedding(x))
        unpacked = model.head(h[-1])
    assert torch.allclose(unpacked[0], z[0], atol=1e-6)
    assert not torch.allclose(unpacked[1], z[1], atol=1e-3)


def test_lstm_errors():
    with pytest.raises(LossbenchError, match="needs vocab_size"):
        create_model("lstm_1x50", input_shape=(12,), n_classes=5, seed=0)
    with pytest.raises(LossbenchError, match="needs model 'bert'"):
        create_model("lstm_1x50", input_shape=(3, 12), n_classes=5, seed=0, vocab_size=9)


def _spec(ds, model: str, **fields) -> RunSpec:
    base = {"dataset": ds.name, "model": model, "protocol": "random", "epochs": 2,
            "batch_size": 16, "lr": 0.05, "device": "cpu", "progress": False,
            "model_params": model_params(ds), "save_predictions_at": (2,)}
    return RunSpec(**{**base, **fields})


def _fit_and_check(spec: RunSpec, ds, split, tmp_path: Path) -> dict:
    out = fit_torch(spec, ds, split, predictions_dir=tmp_path, **QUIET)
    assert not out["diverged"].any() and np.isfinite(out["train_loss"]).all()
    # the predictions file gives the trainer's test accuracy back, and the GLUE scores
    path = tmp_path / f"{spec.run_id}-epoch2.csv.gz"
    assert score_predictions(path, "accuracy") == pytest.approx(out["test_acc"][1])
    return out


def test_fit_torch_lstm_on_generated_reviews(tmp_path):
    write_reviews(tmp_path / "reviews.csv", n=200)
    ds = get_dataset("clothing_reviews", source=tmp_path / "reviews.csv")
    split = ds.splits("random")[0]
    out = _fit_and_check(_spec(ds, "lstm_1x50", loss="ce_el_0to05"), ds, split, tmp_path)
    assert out["val_acc"][1] > 0.4  # chance is 0.2: each rating has its own words


# -- BERT -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 16-wide BertModel, randomly initialised, saved with its WordPiece vocab."""
    transformers = pytest.importorskip(
        "transformers", reason="BERT needs transformers (pip install 'lossbench[text]')")
    folder = write_vocab_txt(tmp_path_factory.mktemp("tiny_bert"), GLUE_WORDS)
    n_vocab = len((folder / "vocab.txt").read_text().split())
    config = transformers.BertConfig(vocab_size=n_vocab, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.mark.slow
def test_bert_seeded_head_and_padding(tiny_bert):
    def build(seed, length=16):
        return create_model("bert", input_shape=(3, length), n_classes=3, seed=seed,
                            path=tiny_bert)

    a, b, c = build(0), build(0), build(1)
    for (key, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(),
                                 c.state_dict().values(), strict=True):
        assert torch.equal(va, vb), key
        assert torch.equal(va, vc) != (key == "model.classifier.weight"), key  # bias: zeros
    rng = np.random.default_rng(0)
    ids = _batch(rng, [16, 5, 9], 16) % 20 + 5 * (_batch(rng, [16, 5, 9], 16) > 0)
    x = torch.stack([ids, torch.zeros_like(ids), (ids > 0).long()], dim=1)
    wider = torch.cat([x, torch.zeros(3, 3, 10, dtype=torch.int64)], dim=2)
    a.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(wider), a(x), rtol=0, atol=1e-5)
    with pytest.raises(LossbenchError, match=r"must be \[N, 3, L\]"):
        create_model("bert", input_shape=(16,), n_classes=3, seed=0, path=tiny_bert)
    with pytest.raises(LossbenchError, match="exceed the checkpoint's max_position"):
        build(0, length=65)


@pytest.mark.slow
def test_fit_torch_bert_on_reviews_and_glue(tiny_bert, tmp_path, monkeypatch):
    """The suite's trainer fine-tunes BERT with a mixing loss: reviews (single texts, random
    split) and MRPC (pairs, the paper's train/dev recipe, F1 from the predictions file)."""
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LOSSBENCH_BERT", str(tiny_bert))
    write_reviews(tmp_path / "reviews.csv", n=80)
    ds = get_dataset("clothing_reviews", source=tmp_path / "reviews.csv", tokenizer="bert",
                     max_length=32)
    assert ds.input_shape == (3, 32) and model_params(ds) == {}  # the model: LOSSBENCH_BERT
    with monkeypatch.context() as env:
        env.setenv("LOSSBENCH_BERT", str(tmp_path))
        assert model_params(ds) == {"path": str(tiny_bert)}  # the tokenizer's, not the env's
    spec = _spec(ds, "bert", loss="ce_el_0to05", optimizer="adam", lr=1e-3)
    _fit_and_check(spec, ds, ds.splits("random")[0], tmp_path)

    write_glue(tmp_path / "glue", n_train=40, n_dev=16)
    mrpc = get_dataset("glue_mrpc", source=tmp_path / "glue")
    spec = _spec(mrpc, "bert", loss="ce", protocol="train_dev", optimizer="adam", lr=1e-3)
    _fit_and_check(spec, mrpc, mrpc.splits("train_dev")[0], tmp_path)
    f1 = score_predictions(tmp_path / f"{spec.run_id}-epoch2.csv.gz", mrpc.meta["metric"])
    assert mrpc.meta["metric"] == "f1" and 0.0 <= f1 <= 1.0
