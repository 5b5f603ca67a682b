"""Where a text set's files come from: ``--source`` / the ``source`` option, else an env variable.

None given: one "not configured" line (``DatasetMissingError``), so a study reports
"not run: data not configured" instead of failing. A path that does not exist: one line naming
it. Nothing is downloaded: these sets sit behind logins (Kaggle) or are fetched by the user's own
GLUE script, so the code takes local files only.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.data import _sources
from bench.errors import DatasetMissingError, LossbenchError

CLOTHING_ENV = "LOSSBENCH_CLOTHING_REVIEWS"
GLUE_ENV = "LOSSBENCH_GLUE"
BERT_ENV = "LOSSBENCH_BERT"


def locate(name: str, env: str, expected: str, source: str | os.PathLike | None) -> Path:
    """The user's path for dataset ``name`` (argument > ``env``); it must exist."""
    origin = _sources.choose(source, env, "")
    if not origin:
        raise DatasetMissingError(f"dataset {name!r} is not configured: set --source or {env} "
                                  f"(expected {expected})")
    path = Path(origin).expanduser()
    if not path.exists():
        raise LossbenchError(f"source {origin!r} of dataset {name!r}: no such file or folder "
                             f"(expected {expected})")
    return path


def tokenizer_dir(name: str, tokenizer: str | os.PathLike | None) -> Path:
    """A Hugging Face tokenizer folder: ``tokenizer`` (``"bert"`` or None: ``LOSSBENCH_BERT``).

    A missing one is "not configured" too: GLUE cannot be encoded without BERT's vocabulary.
    """
    given = None if tokenizer in (None, "", "bert") else str(tokenizer)
    origin = given or os.environ.get(BERT_ENV, "")
    if not origin:
        raise DatasetMissingError(
            f"dataset {name!r} is not configured: its tokenizer comes from the BERT checkpoint; "
            f"set {BERT_ENV} or the option tokenizer=<folder> (a saved bert-base-uncased)")
    path = Path(origin).expanduser()
    if not path.is_dir():
        raise LossbenchError(f"tokenizer {origin!r} of dataset {name!r}: not a folder (expected "
                             "a Hugging Face model folder with its tokenizer files)")
    return path
