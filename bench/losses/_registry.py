"""Loss registry after timm: one decorator, one factory, ids stable, renames warn."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from bench.errors import LossbenchError
from bench.losses._base import CallableLoss, Loss

_REGISTRY: dict[str, Callable[..., Any]] = {}
_LABELS: dict[str, str] = {}
_FAMILIES: dict[str, str] = {}
#: Retired id -> current id. Old ids keep working with a warning; a retired id is never reused.
RENAMED: dict[str, str] = {"ce_el_f0": "ce_el_0", "gce_trunc": "trunc_gce"}


def register_loss(loss_id: str, label: str | None = None) -> Callable:
    """Register a builder (class or function returning a loss) under ``loss_id``.

    The built object gets ``id`` and ``label`` attributes, so a user-defined loss needs no
    boilerplate beyond ``__call__(logits, target, progress=0.0)``; a builder returning a plain
    callable (not a ``Loss``) is wrapped in ``CallableLoss``, which gives it the trainer hooks.
    """

    def decorator(builder: Callable) -> Callable:
        if loss_id in _REGISTRY or loss_id in RENAMED:
            raise LossbenchError(f"Loss id '{loss_id}' is already registered.")
        _REGISTRY[loss_id] = builder
        _LABELS[loss_id] = label or loss_id
        _FAMILIES[loss_id] = builder.__module__.rsplit(".", 1)[-1].lstrip("_")
        return builder

    return decorator


def list_losses(family: str | None = None) -> list[str]:
    """Registered ids in registration order (optionally of one family, e.g. 'mixing')."""
    return [k for k in _REGISTRY if family is None or _FAMILIES[k] == family]


def loss_label(loss_id: str) -> str:
    """Display label for tables and figures (the id itself for unknown ids, e.g. old CSVs)."""
    return _LABELS.get(RENAMED.get(loss_id, loss_id), loss_id)


def make_loss(loss_id: str, **params: Any) -> Any:
    """Build the loss registered as ``loss_id``; the only way code constructs losses."""
    if loss_id in RENAMED:
        new = RENAMED[loss_id]
        warnings.warn(f"Loss id '{loss_id}' was renamed to '{new}'.", FutureWarning, stacklevel=2)
        loss_id = new
    if loss_id not in _REGISTRY:
        known = ", ".join(_REGISTRY)
        raise LossbenchError(f"Unknown loss '{loss_id}'. Known losses: {known}.")
    builder = _REGISTRY[loss_id]
    sig = inspect.signature(builder)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    allowed = [n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY
               or p.kind is p.POSITIONAL_OR_KEYWORD]
    for name in params:
        if not accepts_any and name not in allowed:
            raise LossbenchError(
                f"make_loss('{loss_id}') got an unknown parameter '{name}'. "
                f"Known parameters: {', '.join(allowed) or '(none)'}."
            )
    loss = builder(**params)
    if not isinstance(loss, Loss):  # a plain callable: give it the trainer hooks
        loss = CallableLoss(loss)
    for attr, value in (("id", loss_id), ("label", _LABELS[loss_id]), ("needs", frozenset())):
        if getattr(loss, attr, None) is None:
            setattr(loss, attr, value)
    return loss
