"""Model registry: ``register_model`` / ``create_model`` / ``list_models`` (after timm)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.errors import LossbenchError
from bench.registry import Registry

MODELS = Registry("model")


@dataclass(frozen=True)
class DenseChain:
    """The stacked form of a stackable model: dense layers ``widths[0] -> ... -> widths[-1]``
    with ReLU between them, initialised exactly as the model's own ``nn.Linear`` layers."""

    widths: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        return len(self.widths) - 1


def register_model(name: str, *, family: str, stackable: bool = False,
                   stacked: Callable[..., DenseChain] | None = None,
                   dataset_params: Callable[[Any], dict] | None = None) -> Callable:
    """Register ``builder(input_shape, n_classes, **params) -> nn.Module`` as ``name``.

    ``stackable=True`` needs ``stacked(input_shape, n_classes, **params) -> DenseChain``: the
    stacked engine trains many copies of such a model as batched matrices.
    ``dataset_params(dataset) -> dict``: parameters only the loaded data knows (a text
    model's vocabulary size); trainers add them, a spec's own model params win.
    """
    if stackable and stacked is None:
        raise LossbenchError(f"model {name!r}: stackable=True needs stacked=<DenseChain builder>")
    return MODELS.register(name, family=family, stackable=stackable, stacked=stacked,
                           dataset_params=dataset_params)


def model_params_for(name: str, dataset: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed by the model's ``dataset_params`` hook (``params`` win)."""
    hook = MODELS.get(name).meta.get("dataset_params")
    return {**(hook(dataset) if hook is not None else {}), **params}


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, optionally of one family ("tabular", "image", "text")."""
    return MODELS.names(family)


def model_family(name: str) -> str:
    return MODELS.get(name).family


def _check_shape(name: str, input_shape: Sequence[int], n_classes: int) -> tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise LossbenchError(f"model {name!r}: input_shape must be positive ints; got {shape}")
    if int(n_classes) < 2:
        raise LossbenchError(f"model {name!r}: n_classes must be >= 2; got {n_classes}")
    return shape


def create_model(name: str, *, input_shape: Sequence[int], n_classes: int, seed: int,
                 **params: Any) -> nn.Module:
    """Build model ``name`` with its weights drawn from ``seed``.

    The global torch RNG is forked, so building a model has no side effects and the same
    (name, shape, seed, params) gives the same weights in every process.
    """
    entry = MODELS.get(name)
    shape = _check_shape(name, input_shape, n_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            return entry.builder(shape, int(n_classes), **params)
        except TypeError as err:
            if "unexpected keyword" in str(err):
                raise LossbenchError(f"model {name!r}: {err}") from None
            raise


def stacked_form(name: str, *, input_shape: Sequence[int], n_classes: int,
                 **params: Any) -> DenseChain | None:
    """The model's ``DenseChain`` if it is stackable (with these params), else None."""
    entry = MODELS.get(name)
    if not entry.meta.get("stackable"):
        return None
    return entry.meta["stacked"](_check_shape(name, input_shape, n_classes), int(n_classes),
                                 **params)
