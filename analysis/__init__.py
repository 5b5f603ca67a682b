"""Statistics, figures and reports over long result tables (reads results/, never bench.train).

`analysis.compare(df, ...)` returns a `Comparison` (or one per group); `write_outputs` writes
its files. Both are imported lazily so `lossbench report` does not load scipy/matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Comparison", "compare", "write_outputs"]


def __getattr__(name: str) -> Any:
    if name in ("Comparison", "compare"):
        return getattr(importlib.import_module("analysis._compare"), name)
    if name == "write_outputs":
        return importlib.import_module("analysis.tables").write_outputs
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
