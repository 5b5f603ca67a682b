"""He et al. (2016) CIFAR ResNets 20/32/44/56/110 (mixing paper Tables 1 and 5).

"Deep Residual Learning for Image Recognition", Sec. 4.2: a 3x3 conv with 16 filters, then three
stages of n basic blocks on 16, 32 and 64 channels (depth = 6n + 2), global average pooling and a
linear classifier. Shortcuts are option A (Sec. 3.3): the identity, subsampled with stride 2 and
zero-padded to the new width, so they add no parameters. Init as akamaster/pytorch_resnet_cifar10,
the reference implementation whose counts match the paper (He-normal, fan_in, on every conv and
linear weight): 269,722 / 464,154 / 658,586 / 853,018 / 1,727,962 parameters for 10 classes.

Global average pooling makes any input size work (8x8 digits: 8 -> 4 -> 2 before pooling).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import LossbenchError
from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape

STAGE_WIDTHS = (16, 32, 64)


class ShortcutA(nn.Module):
    """Option-A shortcut: ``x[:, :, ::s, ::s]`` with the extra channels zero (no parameters)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pad_before = (planes - in_planes) // 2
        self.pad_after = planes - in_planes - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))


class BasicBlockA(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (option-A) shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        needs_projection = stride != 1 or in_planes != planes
        self.shortcut = ShortcutA(in_planes, planes, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) of He et al. 2016, Sec. 4.2."""

    def __init__(self, depth: int, in_channels: int, n_classes: int, dropout: float = 0.0,
                 name: str = "cifar_resnet"):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise LossbenchError(f"model {name!r}: depth must be 6n + 2 (n >= 1); got {depth}")
        n_blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, STAGE_WIDTHS[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        in_planes, stages = STAGE_WIDTHS[0], []
        for i, planes in enumerate(STAGE_WIDTHS):
            blocks = []
            for j in range(n_blocks):
                blocks.append(BasicBlockA(in_planes, planes, 2 if i > 0 and j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(name, dropout)
        self.fc = nn.Linear(STAGE_WIDTHS[-1], n_classes)
        for m in self.modules():  # akamaster's _weights_init
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def _build(name: str, depth: int, input_shape: tuple[int, ...], n_classes: int,
           dropout: float) -> CifarResNet:
    c, _, _ = image_shape(name, input_shape)
    return CifarResNet(depth, c, n_classes, dropout, name=name)


@register_model("resnet20", family="image")
def resnet20(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> CifarResNet:
    """ResNet-20 (n = 3): 269,722 parameters for CIFAR-10."""
    return _build("resnet20", 20, input_shape, n_classes, dropout)


@register_model("resnet32", family="image")
def resnet32(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> CifarResNet:
    """ResNet-32 (n = 5): 464,154 parameters for CIFAR-10."""
    return _build("resnet32", 32, input_shape, n_classes, dropout)


@register_model("resnet44", family="image")
def resnet44(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> CifarResNet:
    """ResNet-44 (n = 7): 658,586 parameters for CIFAR-10."""
    return _build("resnet44", 44, input_shape, n_classes, dropout)


@register_model("resnet56", family="image")
def resnet56(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> CifarResNet:
    """ResNet-56 (n = 9): 853,018 parameters for CIFAR-10."""
    return _build("resnet56", 56, input_shape, n_classes, dropout)


@register_model("resnet110", family="image")
def resnet110(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> CifarResNet:
    """ResNet-110 (n = 18): 1,727,962 parameters for CIFAR-10 (mixing paper Table 5)."""
    return _build("resnet110", 110, input_shape, n_classes, dropout)
