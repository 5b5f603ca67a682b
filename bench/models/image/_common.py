"""What every image model shares: the (C, H, W) check and the dropout in front of the classifier.

Dropout follows the mixing paper's Table 6 (Battash et al. 2022, "Mixing EL and CE with extra
regularization": p = 0.2 before the classifier). ``dropout=0`` gives ``nn.Identity`` instead of an
``nn.Dropout``, so the default model is exactly the reference architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from bench.errors import LossbenchError


def image_shape(name: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)`` of ``input_shape`` or one error line naming the model."""
    if len(input_shape) != 3:
        raise LossbenchError(f"model {name!r}: input_shape must be (channels, height, width); "
                             f"got {tuple(input_shape)}")
    c, h, w = (int(d) for d in input_shape)
    return c, h, w


def head_dropout(name: str, p: float) -> nn.Module:
    """``nn.Dropout(p)`` for ``0 < p < 1``; ``nn.Identity()`` (no dropout module) for ``p == 0``."""
    try:
        rate = float(p)
    except (TypeError, ValueError):
        rate = float("nan")
    if not 0.0 <= rate < 1.0:
        raise LossbenchError(f"model {name!r}: dropout must be a float in [0, 1); got {p!r}")
    return nn.Dropout(rate) if rate > 0 else nn.Identity()


def kaiming_fan_out(module: nn.Module) -> None:
    """torchvision's ResNet init: He-normal convs (fan_out, ReLU gain), BatchNorm weight 1 bias 0.

    Linear layers keep PyTorch's default init, as in torchvision.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
