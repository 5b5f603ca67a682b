"""Texts (or text pairs) -> BERT inputs with a Hugging Face tokenizer from a local folder.

Layout (``meta["layout"] == "bert"``): ``X`` int64 ``[N, 3, L]``, rows ``input_ids``,
``token_type_ids``, ``attention_mask``, padded to ``L = max_length`` and truncated
``longest_first`` as transformers' run_glue does; the ``bert`` model unpacks them.
transformers is used for the tokenizer only (the optional ``text`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import LossbenchError

CHUNK = 8192  # texts per tokenizer call: bounds the memory of the Python lists it builds
ROWS = ("input_ids", "token_type_ids", "attention_mask")


def library_version() -> str:
    """transformers' version without importing it (a cache key: tokenizers change with it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformers")
    except PackageNotFoundError:
        return "none"


def load_tokenizer(folder: Path) -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise LossbenchError("BERT inputs need transformers: pip install 'lossbench[text]'"
                             ) from None
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LossbenchError(f"tokenizer folder {folder}: cannot load a tokenizer ({first})"
                             ) from None


def encode_pairs(tokenizer: Any, first: Sequence[str], second: Sequence[str] | None,
                 max_length: int) -> np.ndarray:
    """``[N, 3, max_length]`` int64 (see the module docstring); ``second`` None: single texts."""
    out = np.zeros((len(first), len(ROWS), max_length), dtype=np.int64)
    for a in range(0, len(first), CHUNK):
        b = min(a + CHUNK, len(first))
        enc = tokenizer(list(first[a:b]), None if second is None else list(second[a:b]),
                        max_length=max_length, truncation=True, padding="max_length",
                        return_token_type_ids=True, return_attention_mask=True,
                        return_tensors="np")
        for k, row in enumerate(ROWS):
            out[a:b, k] = enc[row]
    return out


def describe(tokenizer: Any, folder: Path, X: np.ndarray) -> dict[str, Any]:
    """Meta of an encoded set: layout, vocabulary size, pad id, rows that reach the limit."""
    return {"layout": "bert", "tokenizer": str(folder), "vocab_size": int(len(tokenizer)),
            "pad_id": int(tokenizer.pad_token_id or 0), "max_length": int(X.shape[-1]),
            "n_at_max_length": int(X[:, 2, -1].sum()) if len(X) else 0}
