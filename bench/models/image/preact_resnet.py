"""Pre-activation ResNet-18, CIFAR form (mixing paper Tables 1 and 5).

He et al. (2016b), "Identity Mappings in Deep Residual Networks": BN-ReLU before each conv, the
shortcut taken after the first BN-ReLU when it needs a 1x1 projection (no BN on it). Layout of
kuangliu/pytorch-cifar ``models/preact_resnet.py`` (3x3 stem conv 64, no max-pool, four stages of
two blocks on 64/128/256/512 channels): 11,171,146 parameters for 10 classes. That figure is the
kuangliu one; He et al.'s full pre-activation net adds a last BN-ReLU before the pooling, which
kuangliu leaves out (it would add 1,024 parameters: 11,172,170). We follow kuangliu, the code the
CIFAR experiments of the mixing paper (and COT, Table 5) build on. Init: PyTorch's default, as
kuangliu.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the shortcut (a bias-free 1x1 conv when needed)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Stem conv, four stages of ``PreActBlock``, global average pool, (dropout), linear."""

    def __init__(self, layers: tuple[int, int, int, int], in_channels: int, n_classes: int,
                 dropout: float = 0.0, name: str = "preact_resnet"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        in_planes, stages = 64, []
        for i, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            blocks = []
            for j in range(n_blocks):
                blocks.append(PreActBlock(in_planes, planes, 2 if i > 0 and j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(name, dropout)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


@register_model("preact_resnet18", family="image")
def preact_resnet18(input_shape: tuple[int, ...], n_classes: int,
                    dropout: float = 0.0) -> PreActResNet:
    """PreAct ResNet-18 (kuangliu form): 11,171,146 parameters for 10 classes."""
    c, _, _ = image_shape("preact_resnet18", input_shape)
    return PreActResNet((2, 2, 2, 2), c, n_classes, dropout, name="preact_resnet18")
