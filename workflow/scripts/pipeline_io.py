"""Shared by the workflow scripts: errors to the job log (atomic writes are bench.io's)."""

from __future__ import annotations

import sys
from collections.abc import Callable


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
