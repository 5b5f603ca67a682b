"""LeNet-5 of the two-scale paper (Berlyand et al. 2021, Secs. 3.2-3.3: CIFAR-100 and CIFAR-10).

"LeNet-5 adjusted for CIFAR" (their ref. [21], LeCun et al. 1995): two 5x5 convs (6 and 16
filters), each followed by 2x2 max-pooling, then fully connected layers 120 and 84 and the
classifier, ReLU activations (the layout of the PyTorch CIFAR-10 tutorial's net). The paper's
"two fully connected layers" are read as the two hidden ones (120, 84) before the output layer;
this gives 62,006 parameters for 3x32x32 inputs and 10 classes, the paper's "network with over
50,000 parameters" (Sec. 3.2).

Small inputs: LeNet-5 expects 32x32 (LeCun et al. 1998, Sec. II-B, put the 28x28 MNIST digits in a
32x32 field). Inputs smaller than 32 in a dimension are zero-padded, centred, to 32, so 8x8,
16x16 and 28x28 images go through the same layers and the parameter count does not depend on the
input size (1x28x28, 10 classes: 61,706, LeNet-5's classic figure). Larger inputs are not
cropped: the first linear layer grows to the flattened 16 x h x w feature map. Init: PyTorch's
default.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape

FIELD = 32  # LeNet-5's input field


def _feature_side(n: int) -> int:
    """Side of the last feature map: conv5 -> pool2 -> conv5 -> pool2 on a side of ``n``."""
    return ((n - 4) // 2 - 4) // 2


def _centred_pad(n: int) -> tuple[int, int]:
    extra = max(FIELD - n, 0)
    return extra // 2, extra - extra // 2


class LeNet5(nn.Module):
    """(pad to 32) conv 6@5x5, pool, conv 16@5x5, pool, fc 120, fc 84, (dropout), fc classes."""

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, dropout: float = 0.0,
                 name: str = "lenet5"):
        super().__init__()
        c, h, w = input_shape
        (top, bottom), (left, right) = _centred_pad(h), _centred_pad(w)
        self.pad = nn.ZeroPad2d((left, right, top, bottom))
        self.conv1 = nn.Conv2d(c, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        n_flat = 16 * _feature_side(h + top + bottom) * _feature_side(w + left + right)
        self.fc1 = nn.Linear(n_flat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.dropout = head_dropout(name, dropout)
        self.fc3 = nn.Linear(84, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(self.pad(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(self.dropout(x))


@register_model("lenet5", family="image")
def lenet5(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> LeNet5:
    """LeNet-5: 62,006 parameters for 3x32x32 inputs and 10 classes (61,706 for 1 channel)."""
    return LeNet5(image_shape("lenet5", input_shape), n_classes, dropout)
