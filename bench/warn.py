"""Warnings as one line on stderr for the CLI (``lossbench <cmd>: warning: ...``).

Python's default format adds the file, line and source line of the ``warnings.warn`` call:
noise for a user who only needs to know that, e.g., the cache was unusable.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Within the block, print each warning once as ``<prog>: warning: <message>``."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).splitlines()[0] if str(message) else category.__name__
        if text not in seen:
            seen.add(text)
            print(f"{prog}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
