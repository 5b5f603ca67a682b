"""ShuffleNet V2 in two forms: CIFAR (mixing paper Table 1) and ImageNet (Table 2).

Ma et al. (2018), "ShuffleNet V2", Sec. 4 and Table 5: a 3x3 conv 24, three stages of 4, 8, 4
units (the first of each halves the resolution and has two branches; the others split the
channels in two and transform one half), a 1x1 conv to 1024 (2048 at 2x), global average pool and
a linear classifier; the two halves are concatenated and channel-shuffled (2 groups).

- ``imagenet``: the stem conv has stride 2 and is followed by a 3x3/2 max-pool; layer names and
  counts as torchvision's ``shufflenet_v2_x1_0``: 2,278,604 parameters for 1000 classes.
- ``cifar``: kuangliu/pytorch-cifar ``models/shufflenetv2.py``: stride-1 stem, no max-pool, the
  same units otherwise (its ``DownBlock``/``BasicBlock`` are torchvision's units with
  ``stride`` 2/1); net_size 1 has 1,263,854 parameters for 10 classes.

``width`` selects the channel multiplier (0.5, 1.0, 1.5, 2.0; Ma et al. Table 5; the ImageNet
form gives torchvision's 1,366,792 / 2,278,604 / 3,503,624 / 7,393,996). Init: PyTorch's
default, as both references. Global average pooling makes any input size work.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import LossbenchError
from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape

STAGE_REPEATS = (4, 8, 4)
# Ma et al. 2018, Table 5: output channels of conv1, stage2..4, conv5 per width multiplier.
STAGE_CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[N, g*k, H, W] -> interleave the g groups channel by channel (Ma et al. Fig. 3)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _depthwise(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False)


def _pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, bias=False)


class InvertedResidual(nn.Module):
    """One ShuffleNet V2 unit (Ma et al. Fig. 3c for stride 1, Fig. 3d for stride 2)."""

    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.stride = stride
        branch = oup // 2
        assert stride != 1 or inp == 2 * branch, "a stride-1 unit keeps the channel count"
        self.branch1 = nn.Sequential()
        if stride > 1:
            self.branch1 = nn.Sequential(
                _depthwise(inp, stride), nn.BatchNorm2d(inp),
                _pointwise(inp, branch), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(
            _pointwise(inp if stride > 1 else branch, branch), nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            _depthwise(branch, stride), nn.BatchNorm2d(branch),
            _pointwise(branch, branch), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Stem, three stages of ``InvertedResidual`` units, 1x1 conv, pool, (dropout), linear."""

    def __init__(self, channels: tuple[int, ...], in_channels: int, n_classes: int, *,
                 form: str, dropout: float = 0.0, name: str = "shufflenet_v2"):
        super().__init__()
        imagenet = form == "imagenet"
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 3, stride=2 if imagenet else 1, padding=1,
                      bias=False),
            nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if imagenet else nn.Identity()
        inp, stages = channels[0], []
        for repeats, oup in zip(STAGE_REPEATS, channels[1:4], strict=True):
            units = [InvertedResidual(inp, oup, 2)]
            units += [InvertedResidual(oup, oup, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            inp = oup
        self.stage2, self.stage3, self.stage4 = stages  # torchvision's names
        self.conv5 = nn.Sequential(_pointwise(inp, channels[-1]), nn.BatchNorm2d(channels[-1]),
                                   nn.ReLU(inplace=True))
        self.dropout = head_dropout(name, dropout)
        self.fc = nn.Linear(channels[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        x = self.conv5(x).mean((2, 3))
        return self.fc(self.dropout(x))


def _build(name: str, input_shape: tuple[int, ...], n_classes: int, dropout: float,
           width: float, form: str) -> ShuffleNetV2:
    c, _, _ = image_shape(name, input_shape)
    if float(width) not in STAGE_CHANNELS:
        raise LossbenchError(f"model {name!r}: width must be one of {sorted(STAGE_CHANNELS)}; "
                             f"got {width!r}")
    return ShuffleNetV2(STAGE_CHANNELS[float(width)], c, n_classes, form=form, dropout=dropout,
                        name=name)


@register_model("shufflenet_v2", family="image")
def shufflenet_v2(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0,
                  width: float = 1.0) -> ShuffleNetV2:
    """CIFAR ShuffleNet V2 (kuangliu): 1,263,854 parameters for 10 classes at width 1."""
    return _build("shufflenet_v2", input_shape, n_classes, dropout, width, "cifar")


@register_model("shufflenet_v2_imagenet", family="image")
def shufflenet_v2_imagenet(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0,
                           width: float = 1.0) -> ShuffleNetV2:
    """torchvision ShuffleNet V2 x1.0: 2,278,604 parameters for 1000 classes."""
    return _build("shufflenet_v2_imagenet", input_shape, n_classes, dropout, width, "imagenet")
