"""Helpers shared by the workflow scripts: atomic writes (bench.io) and errors to the job log."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench import io


def write_csv(frame: pd.DataFrame, path: str | Path, **kwargs) -> None:
    """Atomic CSV write: readers and an interrupted run never see half a table."""
    io.write_csv(path, frame, **kwargs)


def write_text(text: str, path: str | Path) -> None:
    io.write_text(path, text)


def run_logged(main: Callable[[], None], log: str | None) -> None:
    """Run `main`, sending output to the job log; a LossbenchError becomes one line and exit 2."""
    from bench.errors import LossbenchError

    handle = open(log, "w") if log else sys.stderr  # noqa: SIM115 (kept open for the whole job)
    sys.stdout = sys.stderr = handle
    try:
        main()
    except LossbenchError as exc:
        print(f"error: {exc}", file=handle)
        sys.__stderr__.write(f"error: {exc}\n")
        handle.flush()
        sys.exit(2)
    finally:
        handle.flush()
