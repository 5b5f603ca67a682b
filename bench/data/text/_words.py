"""Word-level tokens for the LSTM models: a regex tokenizer, a vocabulary, padded id arrays.

Reviews are lower-cased and split into runs of letters and digits, keeping inner apostrophes
("don't" is one word); punctuation is dropped. The vocabulary is built from the training rows
only (words seen at least ``min_count`` times there, most frequent first, ties alphabetical),
so no test or validation word leaks into it; every other word maps to ``<unk>``.
Ids: ``<pad>`` = 0, ``<unk>`` = 1, words from 2. Padding is at the end, so a row's length is
its count of non-zero ids (the LSTM packs by it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters/digits, inner apostrophes kept)."""
    return _WORD.findall(text.lower())


def build_vocab(token_lists: Iterable[Sequence[str]], min_count: int) -> list[str]:
    """``[<pad>, <unk>, words...]``: words with count >= ``min_count``, frequent first."""
    counts = Counter(word for tokens in token_lists for word in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count),
                   key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words]


def encode(token_lists: Sequence[Sequence[str]], vocab: Sequence[str],
           max_length: int) -> tuple[np.ndarray, int]:
    """int64 ids ``[N, max_length]`` (first ``max_length`` words, ``<pad>``-filled), and how
    many rows were truncated."""
    index = {w: i for i, w in enumerate(vocab)}
    X = np.full((len(token_lists), max_length), PAD_ID, dtype=np.int64)
    truncated = 0
    for row, tokens in enumerate(token_lists):
        truncated += len(tokens) > max_length
        ids = [index.get(w, UNK_ID) for w in tokens[:max_length]]
        X[row, :len(ids)] = ids
    return X, truncated


def lengths(X: np.ndarray) -> np.ndarray:
    """Tokens per row of a padded id array (pads only at the end)."""
    return (np.asarray(X) != PAD_ID).sum(axis=-1)
