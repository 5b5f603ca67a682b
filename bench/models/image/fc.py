"""The two-scale paper's MNIST network (Berlyand et al. 2021, Sec. 3.3, Fig. 9).

"The structure of the network was two fully connected layers followed by the soft-max": flatten,
a hidden linear layer with ReLU, the output layer. The paper does not give the hidden width; we
take 100 (``hidden``), which gives 79,510 parameters on 1x28x28 MNIST. Init: PyTorch's default.
"""

from __future__ import annotations

from math import prod

from torch import nn

from bench.errors import LossbenchError
from bench.models._registry import register_model
from bench.models.image._common import head_dropout


@register_model("fc2", family="image")
def fc2(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0,
        hidden: int = 100) -> nn.Sequential:
    """flatten -> Linear(d, hidden) -> ReLU -> (dropout) -> Linear(hidden, n_classes)."""
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
        raise LossbenchError(f"model 'fc2': hidden must be a positive int; got {hidden!r}")
    return nn.Sequential(nn.Flatten(), nn.Linear(prod(input_shape), hidden), nn.ReLU(),
                         head_dropout("fc2", dropout), nn.Linear(hidden, n_classes))
