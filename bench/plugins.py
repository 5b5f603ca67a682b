"""User plugins: one Python file that registers a model, dataset or loss, loaded by path.

``lossbench --plugin my_study.py train ...`` (or ``LOSSBENCH_PLUGINS=a.py:b.py``) imports the
files before the command runs, so their ``register_*`` decorators add to the registries
without editing the package (which may be installed read-only).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from bench.errors import LossbenchError

ENV = "LOSSBENCH_PLUGINS"


def plugin_paths(cli_paths: list[str] | None = None) -> list[str]:
    """Paths from ``--plugin`` flags followed by those in ``$LOSSBENCH_PLUGINS``."""
    env = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return list(dict.fromkeys([*(cli_paths or []), *env]))


def load_plugins(paths: list[str]) -> None:
    """Import each file once (by resolved path); one line if it is missing or fails."""
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        name = "lossbench_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        if name in sys.modules:
            continue
        if not path.is_file() or path.suffix != ".py":
            raise LossbenchError(f"plugin {raw}: expected an existing .py file")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except LossbenchError as err:
            del sys.modules[name]
            raise LossbenchError(f"plugin {raw}: {err}") from None
        except Exception as err:  # a user's file: report where, not a traceback
            del sys.modules[name]
            raise LossbenchError(f"plugin {raw}: {type(err).__name__}: {err}") from None
