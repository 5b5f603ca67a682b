"""Helpers shared by the workflow scripts: atomic writes and error reporting to the job log."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def write_csv(frame: pd.DataFrame, path: str | Path, **kwargs) -> None:
    """Write to a temp file beside `path`, then os.replace: readers never see half a table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(text: str, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


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
