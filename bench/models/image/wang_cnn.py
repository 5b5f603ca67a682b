"""The shallow CNN of Wang et al. 2018 ("Iterative Learning with Open-set Noisy Labels", CVPR),
the network of the GCE paper's Table 2 (Zhang & Sabuncu 2018, Sec. 4.2: "a shallow CNN without
data augmentation", "the identical setup as described in [39]").

Layers as the authors' code builds it (YisenWang/ONL, ``util.get_model('cifar10')``): three
blocks of two 3x3 "same" convolutions (64, 128, 196 filters), each conv followed by batch
normalisation and ReLU, each block by 2x2 max-pooling; flatten; a dense layer of 256; the
10-way softmax classifier. That is 1,639,282 trainable parameters for 3x32x32 inputs and 10
classes (convs 832,088 + BN 1,552 + dense 803,072 + classifier 2,570; Keras adds the 1,552
BN moving statistics as non-trainable ones).

Two choices the code leaves open for a plain classifier:

- ReLU after the 256-unit layer (``hidden_relu=True``). In the authors' code that layer is the
  linear embedding of their Siamese network; the GCE paper states "All networks used ReLUs in
  the hidden layers" (Sec. 4). ``hidden_relu=False`` gives the code's form exactly.
- Keras' initialisation (Glorot-uniform kernels, zero biases) and its BatchNormalization
  defaults (momentum 0.99, epsilon 1e-3), since the reference runs were Keras runs. The code's
  L2 penalty of 0.01 on the 256-unit layer alone is not reproduced (lossbench's weight decay is
  one value for all parameters).

Any input of at least 8x8 works: the last feature map is 196 x (H // 8) x (W // 8).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import LossbenchError
from bench.models._registry import register_model
from bench.models.image._common import head_dropout, image_shape

WIDTHS = (64, 128, 196)
HIDDEN = 256


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    out: list[nn.Module] = []
    for c in (c_in, c_out):
        out += [nn.Conv2d(c, c_out, 3, padding=1), nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
                nn.ReLU(inplace=True)]
    return [*out, nn.MaxPool2d(2)]


class WangCNN(nn.Module):
    """(conv-BN-ReLU x 2, pool) x 3 [64, 128, 196], dense 256 (+ ReLU), (dropout), classifier."""

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, dropout: float = 0.0,
                 hidden_relu: bool = True, name: str = "wang2018_cnn"):
        super().__init__()
        c, h, w = input_shape
        if h < 8 or w < 8:
            raise LossbenchError(f"model {name!r}: needs inputs of at least 8x8 (three 2x2 "
                                 f"poolings); got {h}x{w}")
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *WIDTHS[:-1]), WIDTHS, strict=True):
            layers += _block(c_in, c_out)
        self.features = nn.Sequential(*layers)
        self.fc1 = nn.Linear(WIDTHS[-1] * (h // 8) * (w // 8), HIDDEN)
        self.act = nn.ReLU(inplace=True) if hidden_relu else nn.Identity()
        self.dropout = head_dropout(name, dropout)
        self.fc2 = nn.Linear(HIDDEN, n_classes)
        for m in self.modules():  # Keras defaults: Glorot-uniform kernels, zero biases
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(torch.flatten(self.features(x), 1)))
        return self.fc2(self.dropout(x))


@register_model("wang2018_cnn", family="image")
def wang2018_cnn(input_shape: tuple[int, ...], n_classes: int, dropout: float = 0.0,
                 hidden_relu: bool = True) -> WangCNN:
    """Wang et al. 2018's shallow CNN (GCE paper Table 2): 1,639,282 parameters at 3x32x32,
    10 classes."""
    return WangCNN(image_shape("wang2018_cnn", input_shape), n_classes, dropout,
                   bool(hidden_relu))
