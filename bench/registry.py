"""One registry shape for models, datasets, split protocols and augmentations (after timm).

A ``Registry`` maps a name to a builder plus a family and free metadata. Unknown names raise
one ``LossbenchError`` line that lists the known names, so every CLI error reads the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.errors import LossbenchError


@dataclass(frozen=True)
class Entry:
    """What a registry holds for one name."""

    name: str
    builder: Callable[..., Any]
    family: str
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Name -> ``Entry``; ``kind`` ("model", "dataset", ...) words the error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, family: str, **meta: Any) -> Callable:
        """Decorator: register ``builder`` under ``name`` (a name is registered once)."""

        def decorator(builder: Callable) -> Callable:
            self.add(name, builder, family=family, **meta)
            return builder

        return decorator

    def add(self, name: str, builder: Callable, *, family: str, **meta: Any) -> None:
        if name in self._entries:
            raise LossbenchError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, builder, family, dict(meta))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry:
        """The entry of ``name`` or one line listing the known names."""
        if name not in self._entries:
            known = ", ".join(self._entries)
            raise LossbenchError(f"Unknown {self.kind} {name!r}. Known {self.kind}s: {known}")
        return self._entries[name]

    def names(self, family: str | None = None) -> list[str]:
        """Registered names in registration order, optionally of one family."""
        return [n for n, e in self._entries.items() if family is None or e.family == family]

    def families(self) -> list[str]:
        return list(dict.fromkeys(e.family for e in self._entries.values()))


def import_user_modules(package: str, path: list[str], skip: tuple[str, ...] = ()) -> None:
    """Import every module of ``package`` whose name does not start with ``_``.

    This is how "one file plus a registration" works: a user drops ``my_model.py`` beside the
    family modules and its ``@register_*`` decorators run on import.
    """
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_") and module.name not in skip:
            importlib.import_module(f"{package}.{module.name}")
