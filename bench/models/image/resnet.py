"""ResNet-18/34/50/101 and ResNeXt-50/101, CIFAR and ImageNet forms (mixing paper Tables 1-2, 5-6).

Both forms share the blocks of torchvision's ``resnet.py`` (He et al. 2016, "Deep Residual
Learning", Table 1; 1x1 conv + BN projection shortcuts, option B; stride on the 3x3 conv, "ResNet
v1.5"; ResNeXt = grouped 3x3, Xie et al. 2017). They differ in the stem only:

- ``imagenet``: 7x7/2 conv 64 + BN + ReLU + 3x3/2 max-pool, torchvision's init (He-normal fan_out
  convs, BN 1/0). Counts for 1000 classes are torchvision's published ones: ResNet-18 11,689,512,
  -34 21,797,672, -50 25,557,032, -101 44,549,160, ResNeXt-50 32x4d 25,028,904, ResNeXt-101
  32x8d 88,791,336. Layer names follow torchvision's (a test compares state dicts with it
  wherever torchvision imports).
- ``cifar``: 3x3/1 conv 64 + BN + ReLU, no max-pool (kuangliu/pytorch-cifar ``models/resnet.py``,
  the usual CIFAR form of ResNet-18/34), PyTorch's default init as there (Kaiming-uniform).
  ResNet-18 has 11,173,962 and ResNet-34 21,282,122 parameters for 10 classes (kuangliu's
  ``shortcut``/``linear`` are named ``downsample``/``fc`` here, as in torchvision).

Global average pooling (instead of kuangliu's fixed 4x4 pool) gives the same output on 32x32 and
lets any input size work: 8x8 and 16x16 images simply reach 1x1 earlier.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape, kaiming_fan_out


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64):
        super().__init__()
        assert groups == 1 and base_width == 64, "BasicBlock has no groups or width (torchvision)"
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand x4 (ResNet-50/101, ResNeXt)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _imagenet_stem(in_channels: int) -> tuple[nn.Module, nn.Module]:
    return nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), \
        nn.MaxPool2d(3, stride=2, padding=1)


def _cifar_stem(in_channels: int) -> tuple[nn.Module, nn.Module]:
    return conv3x3(in_channels, 64), nn.Identity()


STEMS = {"imagenet": _imagenet_stem, "cifar": _cifar_stem}


def _default_init(module: nn.Module) -> None:
    """kuangliu keeps PyTorch's default init (Kaiming-uniform, a = sqrt(5))."""


INITS = {"imagenet": kaiming_fan_out, "cifar": _default_init}


class ResNet(nn.Module):
    """Four stages (64, 128, 256, 512 planes) after a stem chosen by ``form``."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, int, int, int],
                 in_channels: int, n_classes: int, *, form: str, groups: int = 1,
                 width_per_group: int = 64, dropout: float = 0.0, name: str = "resnet"):
        super().__init__()
        self.groups, self.base_width, self.inplanes = groups, width_per_group, 64
        self.conv1, self.maxpool = STEMS[form](in_channels)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(name, dropout)
        self.fc = nn.Linear(512 * block.expansion, n_classes)
        INITS[form](self)

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, n_blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, groups=self.groups, base_width=self.base_width)
                   for _ in range(1, n_blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def _build(name: str, input_shape: tuple[int, ...], n_classes: int, dropout: float,
           block: type[BasicBlock | Bottleneck], layers: tuple[int, int, int, int], form: str,
           groups: int = 1, width_per_group: int = 64) -> ResNet:
    c, _, _ = image_shape(name, input_shape)
    return ResNet(block, layers, c, n_classes, form=form, groups=groups,
                  width_per_group=width_per_group, dropout=dropout, name=name)


# CIFAR form (kuangliu/pytorch-cifar): mixing paper Table 1 (CIFAR-100, CINIC-10), Table 6.

@register_model("resnet18", family="image")
def resnet18(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> ResNet:
    """CIFAR ResNet-18 (3x3 stem, no max-pool): 11,173,962 parameters for 10 classes."""
    return _build("resnet18", input_shape, n_classes, dropout, BasicBlock, (2, 2, 2, 2), "cifar")


@register_model("resnet34", family="image")
def resnet34(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0) -> ResNet:
    """CIFAR ResNet-34 (3x3 stem, no max-pool): 21,282,122 parameters for 10 classes."""
    return _build("resnet34", input_shape, n_classes, dropout, BasicBlock, (3, 4, 6, 3), "cifar")


# ImageNet form (torchvision): mixing paper Table 2 (ImageNet), Table 5 (Tiny-ImageNet, ImageNet).

@register_model("resnet18_imagenet", family="image")
def resnet18_imagenet(input_shape: tuple[int, ...], n_classes: int,
                      dropout: float = 0.0) -> ResNet:
    """torchvision ResNet-18: 11,689,512 parameters for 1000 classes."""
    return _build("resnet18_imagenet", input_shape, n_classes, dropout, BasicBlock, (2, 2, 2, 2),
                  "imagenet")


@register_model("resnet34_imagenet", family="image")
def resnet34_imagenet(input_shape: tuple[int, ...], n_classes: int,
                      dropout: float = 0.0) -> ResNet:
    """torchvision ResNet-34: 21,797,672 parameters for 1000 classes."""
    return _build("resnet34_imagenet", input_shape, n_classes, dropout, BasicBlock, (3, 4, 6, 3),
                  "imagenet")


@register_model("resnet50_imagenet", family="image")
def resnet50_imagenet(input_shape: tuple[int, ...], n_classes: int,
                      dropout: float = 0.0) -> ResNet:
    """torchvision ResNet-50: 25,557,032 parameters for 1000 classes."""
    return _build("resnet50_imagenet", input_shape, n_classes, dropout, Bottleneck, (3, 4, 6, 3),
                  "imagenet")


@register_model("resnet101_imagenet", family="image")
def resnet101_imagenet(input_shape: tuple[int, ...], n_classes: int,
                       dropout: float = 0.0) -> ResNet:
    """torchvision ResNet-101: 44,549,160 parameters for 1000 classes."""
    return _build("resnet101_imagenet", input_shape, n_classes, dropout, Bottleneck,
                  (3, 4, 23, 3), "imagenet")


@register_model("resnext50_32x4d", family="image")
def resnext50_32x4d(input_shape: tuple[int, ...], n_classes: int,
                    dropout: float = 0.0) -> ResNet:
    """torchvision ResNeXt-50 32x4d (cardinality 32, width 4): 25,028,904 params, 1000 classes."""
    return _build("resnext50_32x4d", input_shape, n_classes, dropout, Bottleneck, (3, 4, 6, 3),
                  "imagenet", groups=32, width_per_group=4)


@register_model("resnext101_32x8d", family="image")
def resnext101_32x8d(input_shape: tuple[int, ...], n_classes: int,
                     dropout: float = 0.0) -> ResNet:
    """torchvision ResNeXt-101 32x8d (cardinality 32, width 8): 88,791,336 params, 1000 classes."""
    return _build("resnext101_32x8d", input_shape, n_classes, dropout, Bottleneck, (3, 4, 23, 3),
                  "imagenet", groups=32, width_per_group=8)
