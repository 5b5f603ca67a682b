"""The mixing paper's text models: five LSTM classifiers and a fine-tuned BERT.

LSTMs (Battash et al. 2022, Sec. "LSTM multi-class classification"): "an embedding layer which
maps the input tokens to vectors in R^{E_d}, one or two LSTM layers, each with H_d LSTM cells.
Then a linear projection from the output of the LSTM at the end of the sequence". The five
configurations, registered as ``lstm_<layers>x<H_d>`` with E_d = H_d: (1) ``lstm_1x50``,
(2) ``lstm_1x75``, (3) ``lstm_1x100``, (4) ``lstm_2x50``, (5) ``lstm_2x100``. Input: int64 ids
``[B, L]`` padded at the end with ``pad_id``; sequences are packed by length, so padding changes
nothing and "the end of the sequence" is each review's last word. ``vocab_size`` comes from the
dataset (``model_params(dataset)``).

``bert``: ``AutoModelForSequenceClassification`` from a local folder (``path``, default
``LOSSBENCH_BERT``, e.g. a saved bert-base-uncased) with a new ``n_classes`` head drawn from the
run's seed; input int64 ``[B, 3, L]`` (input_ids, token_type_ids, attention_mask, the GLUE
loaders' layout). transformers supplies the model only; the suite's trainer trains it, so any
registered loss applies. The paper's recipe (length 64, lr 2e-5, 6 epochs) is the study's.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from bench.errors import LossbenchError
from bench.models._registry import register_model

BERT_ENV = "LOSSBENCH_BERT"
#: (layers, H_d = E_d) of the paper's five configurations, in its order (Table 3, Arch 1-5)
LSTM_CONFIGS: dict[str, tuple[int, int]] = {
    "lstm_1x50": (1, 50), "lstm_1x75": (1, 75), "lstm_1x100": (1, 100),
    "lstm_2x50": (2, 50), "lstm_2x100": (2, 100)}


class LSTMClassifier(nn.Module):
    """Embedding -> LSTM (packed by length) -> linear map of the top layer's last state."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, layers: int,
                 n_classes: int, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = int(pad_id)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=self.pad_id)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # an all-pad row counts as one step (of the pad's zero vector), not zero
        lengths = (x != self.pad_id).sum(dim=1).clamp_min(1)
        x = x[:, :int(lengths.max())]  # columns of pads only: never read
        packed = pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])


def _lstm(layers: int, size: int, input_shape: tuple[int, ...], n_classes: int,
          vocab_size: int | None = None, pad_id: int = 0) -> LSTMClassifier:
    name = f"lstm_{layers}x{size}"
    if len(input_shape) != 1:
        raise LossbenchError(f"model {name!r}: input must be token ids [N, L]; got input_shape "
                             f"{input_shape} (a 'bert' layout [N, 3, L] needs model 'bert')")
    if vocab_size is None or int(vocab_size) < 2:
        raise LossbenchError(f"model {name!r} needs vocab_size >= 2 (the dataset's "
                             f"meta['vocab_size']; bench.models.text.model_params); got "
                             f"{vocab_size!r}")
    return LSTMClassifier(int(vocab_size), size, size, layers, n_classes, pad_id)


for _name, (_layers, _size) in LSTM_CONFIGS.items():
    register_model(_name, family="text", dataset_params=lambda ds: model_params(ds))(
        partial(_lstm, _layers, _size))


class BertClassifier(nn.Module):
    """A transformers sequence classifier on ``[B, 3, L]`` batches; returns its logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, 2]
        # trailing columns that are padding in every row change no output: cut them
        n = int(mask.any(dim=0).nonzero().max()) + 1 if bool(mask.any()) else 1
        return self.model(input_ids=x[:, 0, :n], token_type_ids=x[:, 1, :n],
                          attention_mask=mask[:, :n]).logits


@register_model("bert", family="text", dataset_params=lambda ds: model_params(ds))
def bert(input_shape: tuple[int, ...], n_classes: int,
         path: str | os.PathLike | None = None) -> BertClassifier:
    """BERT with a fresh ``n_classes`` head from the folder ``path`` (or ``LOSSBENCH_BERT``)."""
    if len(input_shape) != 2 or input_shape[0] != 3:
        raise LossbenchError(f"model 'bert': input must be [N, 3, L] (input_ids, token_type_ids, "
                             f"attention_mask); got input_shape {input_shape}")
    folder = str(path or os.environ.get(BERT_ENV, ""))
    if not folder:
        raise LossbenchError(f"model 'bert' is not configured: set {BERT_ENV} or model_params "
                             "path=<folder> (a saved bert-base-uncased)")
    if not os.path.isdir(folder):
        raise LossbenchError(f"model 'bert': {folder!r} is not a folder (expected a saved "
                             "Hugging Face model: config.json and weights)")
    try:
        from transformers import AutoModelForSequenceClassification
    except ImportError:
        raise LossbenchError("model 'bert' needs transformers: pip install 'lossbench[text]'"
                             ) from None
    try:
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=n_classes)
    except (OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise LossbenchError(f"model 'bert': cannot load {folder!r} ({first})") from None
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and input_shape[1] > limit:
        raise LossbenchError(f"model 'bert': sequences of {input_shape[1]} tokens exceed the "
                             f"checkpoint's max_position_embeddings {limit}")
    return BertClassifier(model)


def model_params(dataset: Any) -> dict[str, Any]:
    """What a text model needs from its dataset: the LSTMs' vocabulary size and pad id; for
    the BERT layout, the folder its tokenizer came from (so model and tokenizer match), left
    out when it is ``LOSSBENCH_BERT``'s, so a spec (and its run id) carries no machine's path."""
    meta = getattr(dataset, "meta", {}) or {}
    if meta.get("layout") == "bert":
        env = os.environ.get(BERT_ENV, "")
        same = bool(env) and os.path.realpath(env) == os.path.realpath(meta["tokenizer"])
        return {} if same else {"path": meta["tokenizer"]}
    if meta.get("layout") == "ids":
        return {"vocab_size": int(meta["vocab_size"]), "pad_id": int(meta["pad_id"])}
    raise LossbenchError(f"dataset {getattr(dataset, 'name', '?')!r} is not a text dataset "
                         "(meta['layout'] is neither 'ids' nor 'bert')")
