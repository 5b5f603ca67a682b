"""ResNeXt-29 for CIFAR (mixing paper Tables 1 and 5), kuangliu/pytorch-cifar ``models/resnext.py``.

Xie et al. (2017), "Aggregated Residual Transformations", Sec. 5.3 (CIFAR): 29 layers = a stem
conv, three stages of three bottleneck blocks (3 x 3 x 3 = 27 convs) and the classifier. The block
is 1x1 conv to ``cardinality x width`` channels, a 3x3 conv with ``cardinality`` groups, a 1x1
conv to twice that (kuangliu's ``expansion = 2``); the width doubles at each stage and stages 2
and 3 start with stride 2; 1x1 conv + BN projection shortcuts. The stem is kuangliu's 1x1 conv 64.
This is kuangliu's form, not the paper's (whose 8x64d has 34.4M parameters, Table 7), as the
widely used PyTorch CIFAR codebases build it.

Registered: ``resnext29_2x64d`` (cardinality 2, width 64: 9,128,778 parameters for 10 classes,
kuangliu's ``ResNeXt29_2x64d``) and ``resnext29_32x4d`` (cardinality 32, width 4: 4,774,218).
The mixing paper names neither; COT (Chen et al. 2019, the mixing paper's Table 5 protocol) uses
kuangliu's models (its repository's PreActResNet.py is kuangliu's), and to our recollection its
ResNeXt-29 is 2x64d (not checked against the COT paper here). Counts: the thop "Accuracy
detail" table of a kuangliu/pytorch-cifar README (as found in a fork of it).
Init: PyTorch's default, as kuangliu. Global average pooling replaces the fixed 8x8 pool.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape

EXPANSION = 2


class ResNeXtBlock(nn.Module):
    """1x1 -> grouped 3x3 -> 1x1 (x2), each with BN, plus the shortcut; ReLU after the sum."""

    def __init__(self, in_planes: int, cardinality: int, width: int, stride: int):
        super().__init__()
        group_width = cardinality * width
        out_planes = EXPANSION * group_width
        self.conv1 = nn.Conv2d(in_planes, group_width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(group_width)
        self.conv2 = nn.Conv2d(group_width, group_width, 3, stride=stride, padding=1,
                               groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(group_width)
        self.conv3 = nn.Conv2d(group_width, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


class ResNeXt29(nn.Module):
    """1x1 stem conv 64, three stages of three ``ResNeXtBlock``, global average pool, linear."""

    def __init__(self, cardinality: int, width: int, in_channels: int, n_classes: int,
                 dropout: float = 0.0, name: str = "resnext29"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes, stages = 64, []
        for i in range(3):
            stage_width = width * 2**i
            blocks = []
            for j in range(3):
                blocks.append(ResNeXtBlock(in_planes, cardinality, stage_width,
                                           2 if i > 0 and j == 0 else 1))
                in_planes = EXPANSION * cardinality * stage_width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(name, dropout)
        self.fc = nn.Linear(in_planes, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


@register_model("resnext29_2x64d", family="image")
def resnext29_2x64d(input_shape: tuple[int, ...], n_classes: int,
                    dropout: float = 0.0) -> ResNeXt29:
    """ResNeXt-29 2x64d (kuangliu): 9,128,778 parameters for 10 classes."""
    c, _, _ = image_shape("resnext29_2x64d", input_shape)
    return ResNeXt29(2, 64, c, n_classes, dropout, name="resnext29_2x64d")


@register_model("resnext29_32x4d", family="image")
def resnext29_32x4d(input_shape: tuple[int, ...], n_classes: int,
                    dropout: float = 0.0) -> ResNeXt29:
    """ResNeXt-29 32x4d (kuangliu): 4,774,218 parameters for 10 classes."""
    c, _, _ = image_shape("resnext29_32x4d", input_shape)
    return ResNeXt29(32, 4, c, n_classes, dropout, name="resnext29_32x4d")
