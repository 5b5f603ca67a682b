"""The text family: Women's Clothing E-Commerce Reviews (LSTMs) and seven GLUE tasks (BERT).

Two of the mixing paper's four benchmark families (Battash et al. 2022, Table 3 and Fig. 2).
Nothing is downloaded: sources are local files given by ``--source`` / the ``source`` option,
else ``LOSSBENCH_CLOTHING_REVIEWS`` / ``LOSSBENCH_GLUE``; none gives one "not configured" line
(``DatasetMissingError``).

How token ids reach a model (``meta["layout"]``; the torch trainer passes int64 batches as
they are):

- ``"ids"`` (word level, ``tokenizer="words"``): ``X`` int64 ``[N, L]``, ``<pad>`` = 0 at the
  end, ``<unk>`` = 1; a row's length is its count of non-zero ids. ``meta["vocab"]`` is the
  vocabulary, ``meta["vocab_size"]`` what the LSTMs need (``bench.models.text.model_params``).
- ``"bert"`` (a Hugging Face tokenizer folder, ``tokenizer="bert"`` = ``LOSSBENCH_BERT``):
  ``X`` int64 ``[N, 3, L]``, rows input_ids, token_type_ids, attention_mask (``_subword``).

``clothing_reviews``: ``y = Rating - 1`` (5 classes); rows without text dropped and counted.
The paper gives no split, so the suite's is protocol ``random`` (seeded by the name, stratified):
20% test, then 20% of the rest for validation, i.e. 64/16/20 (``test_fraction``,
``val_fraction``). The word vocabulary is built from that split's training rows only
(``min_count`` = 2 occurrences there; other words -> ``<unk>``); reviews are cut to
``max_length`` = 128 words (``meta["n_truncated"]`` counts the cut ones). These three numbers
are the suite's choice; the paper states none. There is no published test split, so
``official`` refuses it.

``glue_<task>``: the paper fine-tunes on "seven classification tasks" of GLUE, where "MNLI has
three classes and the rest of the tasks have two" (Sec. "BERT on the GLUE Benchmark"). Of the
nine GLUE tasks STS-B is regression (no classification loss applies) and WNLI is the one BERT
leaves out ("we exclude the problematic WNLI set", Devlin et al. 2018, Sec. 4.1, the recipe
the paper's transformers footnote points to), which leaves CoLA, SST-2, MRPC, QQP, MNLI (matched
dev), QNLI, RTE. ``test_idx`` is the dev set (the paper evaluates there); ``meta["metric"]`` (and
the registration's ``metric=``) the official score: the trainers record it per epoch as
``<split>_score`` (``bench.train._metrics``, from per-class counts summed over batches) and
select by ``val_score``; ``metrics`` scores a predictions file with scikit-learn. Protocols:
``official`` (validation carved from train) and ``train_dev`` (the paper's recipe: train on all
of train, report the dev set after the last epoch; validation is the dev set itself, so no
epoch is selected by it: the tables take the last). Inputs are BERT's:
``max_length`` = 64 as in the paper; encodings are cached (``_cache``).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.data._registry import Split, register_dataset, register_protocol
from bench.data.arrays import ArrayDataset, published_split, random_split
from bench.data.text import _cache, _clothing, _glue, _subword, _words
from bench.data.text._source import CLOTHING_ENV, GLUE_ENV, locate, tokenizer_dir
from bench.errors import LossbenchError

__all__ = ["FAMILY", "GLUE_TASKS", "train_dev"]

FAMILY = "text"
GLUE_TASKS = _glue.TASKS
CLOTHING_MAX_LENGTH = 128  # words or subwords; the suite's choice (the paper gives none)
GLUE_MAX_LENGTH = 64  # "a maximum sequence length of 64" (Battash et al. 2022, BERT section)
MIN_COUNT = 2


def _positive(name: str, option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LossbenchError(f"dataset {name!r}: option {option!r} must be a positive int; got "
                             f"{value!r}")
    return int(value)


def _fractions(name: str, options: dict[str, Any], allowed: tuple[str, ...],
               keywords: str) -> dict[str, float]:
    """The split fractions among ``options``; anything else is one line naming what it takes."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise LossbenchError(f"dataset {name!r}: unknown option {unknown[0]!r}; it takes "
                             f"{keywords}, {', '.join(allowed)}")
    return {k: float(v) for k, v in options.items()}


@register_dataset("clothing_reviews", family=FAMILY, env=CLOTHING_ENV, metric="accuracy")
def clothing_reviews(source: str | os.PathLike | None = None, tokenizer: str = "words",
                     max_length: int = CLOTHING_MAX_LENGTH, min_count: int = MIN_COUNT,
                     **options: Any) -> ArrayDataset:
    """Women's Clothing E-Commerce Reviews: review text -> rating 1-5 (see the module doc)."""
    name = "clothing_reviews"
    fractions = _fractions(name, options, ("val_fraction", "test_fraction"),
                           "tokenizer, max_length, min_count")
    max_length = _positive(name, "max_length", max_length)
    path = _clothing.csv_file(locate(name, CLOTHING_ENV, _clothing.EXPECTED, source))
    texts, y, counts = _clothing.read(path)
    labels_only = ArrayDataset(name, np.zeros((len(y), 0)), y, len(_clothing.RATINGS),
                               family=FAMILY, **fractions)
    fit = random_split(labels_only)[0][0]
    meta: dict[str, Any] = {"source": str(path), **counts, "metric": "accuracy",
                            "split": "random", **fractions}
    if tokenizer == "words":
        tokens = [_words.tokenize(t) for t in texts]
        vocab = _words.build_vocab((tokens[i] for i in fit),
                                   _positive(name, "min_count", min_count))
        X, n_truncated = _words.encode(tokens, vocab, max_length)
        meta.update(layout="ids", vocab=vocab, vocab_size=len(vocab), pad_id=_words.PAD_ID,
                    unk_id=_words.UNK_ID, max_length=max_length, min_count=int(min_count),
                    n_truncated=int(n_truncated), vocab_rows="random protocol, train part")
    else:
        folder = tokenizer_dir(name, tokenizer)
        tok = _subword.load_tokenizer(folder)
        X = _subword.encode_pairs(tok, texts, None, max_length)
        meta.update(_subword.describe(tok, folder, X))
    return ArrayDataset(name, X, y, len(_clothing.RATINGS), family=FAMILY,
                        class_names=list(_clothing.CLASS_NAMES), meta=meta, **fractions)


def _glue_build(task: _glue.GlueTask, folder: Path, kind: str, tok_folder: Path,
                max_length: int) -> _cache.Built:
    if kind == "hf":
        train, dev = _glue.read_hf(folder, task)
        files = {"source": str(folder)}
    else:
        train_file, dev_file = _glue.tsv_files(folder, task)
        train, dev = _glue.read_tsv(train_file, task), _glue.read_tsv(dev_file, task)
        files = {"source": str(folder), "train_file": str(train_file),
                 "dev_file": str(dev_file)}
    for part, label in ((train, "train"), (dev, "dev")):
        if not len(part.y):
            raise LossbenchError(f"{folder}: no usable {label} row of GLUE {task.folder} "
                                 f"({part.n_dropped} dropped: empty text or missing fields)")
    tok = _subword.load_tokenizer(tok_folder)
    texts = [a + b for a, b in zip(train.texts, dev.texts, strict=True)]
    X = _subword.encode_pairs(tok, texts[0], texts[1] if len(texts) > 1 else None, max_length)
    n_train = len(train.y)
    arrays = {"X": X, "y": np.concatenate([train.y, dev.y]),
              "test_idx": np.arange(n_train, n_train + len(dev.y), dtype=np.int64)}
    meta = {**files, "format": kind, "task": task.name, "metric": task.metric,
            "n_train": n_train, "n_dev": len(dev.y), "n_dropped_train": train.n_dropped,
            "n_dropped_dev": dev.n_dropped, **_subword.describe(tok, tok_folder, X)}
    return arrays, meta


def _glue_loader(task: _glue.GlueTask, source: str | os.PathLike | None = None,
                 tokenizer: str | None = "bert", max_length: int = GLUE_MAX_LENGTH,
                 **options: Any) -> ArrayDataset:
    """GLUE ``task``: train + dev rows, ``test_idx`` the dev set (see the module doc)."""
    name = f"glue_{task.name}"
    fractions = _fractions(name, options, ("val_fraction",), "tokenizer, max_length")
    max_length = _positive(name, "max_length", max_length)
    root = locate(name, GLUE_ENV, _glue.EXPECTED, source)
    folder, kind = _glue.task_folder(root, task)
    tok_folder = tokenizer_dir(name, tokenizer)
    key = (f"{_cache.files_key([folder])}:{_cache.files_key([tok_folder])}:{max_length}:"
           f"{_subword.library_version()}")
    arrays, meta = _cache.cached(name, key, partial(_glue_build, task, folder, kind,
                                                    tok_folder, max_length))
    return ArrayDataset(name, arrays["X"], arrays["y"], len(task.class_names), family=FAMILY,
                        class_names=list(task.class_names), test_idx=arrays["test_idx"],
                        meta=meta, **fractions)


for _task in GLUE_TASKS.values():
    register_dataset(f"glue_{_task.name}", family=FAMILY, env=GLUE_ENV, metric=_task.metric)(
        partial(_glue_loader, _task))


@register_protocol("train_dev", families=(FAMILY,), epoch="last")
def train_dev(ds: ArrayDataset) -> list[Split]:
    """All published training rows train; validation = test = the published dev set.

    The GLUE recipe of the paper (fine-tune a fixed number of epochs, report the dev score
    of the last one): the trainers' tables take the last epoch (``epoch="last"``), never the
    best by validation, which would be selection on the test set. Among several lrs the best
    by the dev score is kept, as BERT's recipe (Devlin et al. 2018, Sec. 4.1: "selected the
    best fine-tuning learning rate ... on the Dev set").
    """
    train, test = published_split(
        ds, "has no published dev/test set; protocol 'train_dev' needs one (use 'random')")
    return [(train, test.copy(), test)]
