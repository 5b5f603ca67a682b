"""The mixing paper's UCI architectures (Battash et al. 2022, "UCI" section).

``linear``: one d x c layer; ``mlp``: d x d, ReLU, d x c. Both are stackable: the stacked
engine trains many copies as batched matrices, initialised from these very modules (same
seed -> same weights), so stacked and per-model runs start identical by construction.
"""

from __future__ import annotations

from math import prod

from torch import nn

from bench.models._registry import DenseChain, register_model


def _n_in(input_shape: tuple[int, ...]) -> int:
    return prod(input_shape)


def _maybe_flatten(input_shape: tuple[int, ...]) -> list[nn.Module]:
    return [nn.Flatten()] if len(input_shape) > 1 else []


def _linear_chain(input_shape: tuple[int, ...], n_classes: int) -> DenseChain:
    return DenseChain((_n_in(input_shape), n_classes))


def _mlp_chain(input_shape: tuple[int, ...], n_classes: int) -> DenseChain:
    d = _n_in(input_shape)
    return DenseChain((d, d, n_classes))


@register_model("linear", family="tabular", stackable=True, stacked=_linear_chain)
def linear(input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """Multinomial logistic regression: d·c + c parameters."""
    return nn.Sequential(*_maybe_flatten(input_shape), nn.Linear(_n_in(input_shape), n_classes))


@register_model("mlp", family="tabular", stackable=True, stacked=_mlp_chain)
def mlp(input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """One hidden layer as wide as the input: d·d + d + d·c + c parameters."""
    d = _n_in(input_shape)
    return nn.Sequential(*_maybe_flatten(input_shape), nn.Linear(d, d), nn.ReLU(),
                         nn.Linear(d, n_classes))
