"""Atomic file writes: a reader (Snakemake, `lossbench report`) never sees half a file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.io import atomic_write


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_csv(path: str | Path, table: pd.DataFrame, index: bool = False) -> Path:
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=index, float_format="%.10g"))


def _json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats become null; numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: dict) -> Path:
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n"
    return write_text(path, text)


def save_figure(fig: Any, path: str | Path, bbox_inches: str | None = "tight") -> Path:
    """Save a matplotlib figure atomically; the format follows the file suffix.

    No date in the file and a fixed SVG id salt: the same figure gives the same bytes, so a
    rerun of the pipeline changes a committed figure only when the figure changes.
    """
    import matplotlib

    fmt = Path(path).suffix.lstrip(".")
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None

    def write(tmp: str) -> None:
        with matplotlib.rc_context({"svg.hashsalt": "lossbench"}):
            fig.savefig(tmp, format=fmt, bbox_inches=bbox_inches, dpi=150, metadata=metadata)

    return atomic_write(path, write)
