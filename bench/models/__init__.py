"""Architectures of the paper (``linear``, ``mlp``) as plain modules and as stacked parameters.

The stacked engine holds G models' weights in a few tensors; it builds them from the very
``nn.Linear`` modules a naive loop would use (same seed -> same module), so stacked and naive
runs start from identical weights by construction.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import LossbenchError

ARCHS: tuple[str, ...] = ("linear", "mlp")


def check_arch(arch: str) -> str:
    """Return ``arch`` or raise a one-line error listing the known architectures."""
    if arch not in ARCHS:
        raise LossbenchError(f"Unknown arch {arch!r}. Known archs: {', '.join(ARCHS)}")
    return arch


def build_module(arch: str, n_in: int, n_out: int, seed: int) -> nn.Sequential:
    """The paper's model with torch's default ``nn.Linear`` init drawn from ``seed``.

    ``linear`` = one n_in x n_out layer; ``mlp`` = n_in x n_in, ReLU, n_in x n_out.
    The global RNG state is restored afterwards so building models has no side effects.
    """
    check_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if arch == "linear":
            return nn.Sequential(nn.Linear(n_in, n_out))
        return nn.Sequential(nn.Linear(n_in, n_in), nn.ReLU(), nn.Linear(n_in, n_out))


def init_params(arch: str, n_in: int, n_out: int, seed: int) -> list[torch.Tensor]:
    """Initial ``[W1, b1(, W2, b2)]`` of one model, weights as ``[in, out]`` (x @ W + b)."""
    module = build_module(arch, n_in, n_out, seed)
    out: list[torch.Tensor] = []
    for layer in module:
        if isinstance(layer, nn.Linear):
            out += [layer.weight.detach().t().contiguous(), layer.bias.detach().clone()]
    return out


def hidden_size(arch: str, n_in: int, n_out: int) -> int:
    """Width of the first layer's output (the logits for ``linear``)."""
    return n_out if check_arch(arch) == "linear" else n_in


__all__ = ["ARCHS", "build_module", "check_arch", "hidden_size", "init_params"]
