"""On-device batch augmentation: named pipelines of vectorised ops (plain torch, no torchvision).

The trainer keeps the training set on the device (uint8) and augments each batch there
(hlb-CIFAR10 / airbench style, STYLE.md section 6), so every op works on a whole batch
``x [B, C, H, W]`` (float in [0, 1]) at once: crops by index grids, flips by ``torch.where``
on a per-sample mask, rotations and resized crops by per-sample ``affine_grid``. Every random
draw comes from the ``generator`` the trainer creates on ``x``'s device, so a batch is a
function of (input, generator state) only. ``train=False`` runs the deterministic part
(normalisation, ImageNet's centre crop) and draws nothing.

Names (``get_augment``): a base pipeline, then extras joined by ``+``, e.g.
``cifar_standard+erasing`` or ``cinic_standard+jitter``. Ops run in a fixed order whatever
the name's order: resized crop, pad-crop, flip, rotation, colour jitter, erasing (all on
[0, 1] images, as torchvision's recipes apply them to the PIL image or before ``Normalize``),
then normalisation.

- ``none``: identity (tabular data).
- ``normalize``: per-channel ``(x - mean) / std`` (``channel_stats`` of the training set).
- ``cifar_standard``: normalize + 4-pixel zero pad and random crop + horizontal flip p = 0.5
  (mixing paper, "Recognition in CIFAR100 and CINIC10": "random cropping, random horizontal
  flip and normalization").
- ``cinic_standard``: cifar_standard + random rotation of +-15 degrees (same section: CINIC-10
  adds "random rotation for DNNs with more than one million parameters"; the config picks
  cinic_standard or cifar_standard by model size).
- ``gce_standard``: per-pixel mean subtraction, then 4-pixel zero pad and random crop +
  horizontal flip p = 0.5 (GCE paper, Zhang & Sabuncu 2018, Sec. 4.2: "Per-pixel mean
  subtraction, horizontal random flip and 32 x 32 random crops after padding with 4 pixels on
  each side", the CIFAR recipe of He et al. 2016). The mean image [C, H, W] of the training set
  is subtracted first and nothing is divided, so the padded border is the mean image (zero after
  subtraction), as in He et al.'s recipe. Its statistics are the mean image, not channel
  means: build it with ``augment_stats(name, X_train)``.
- ``imagenet_standard``: RandomResizedCrop 224 (scale (0.08, 1), ratio (3/4, 4/3)) + flip;
  eval: resize the short side to 256 and centre-crop 224 (section "ImageNet", the official
  PyTorch script's recipe), then normalize.
- extras ``erasing`` (Random Erasing), ``jitter`` (colour jitter), ``rotation``: the
  regularisations of the mixing paper's Table 6. Dropout (also in Table 6) is a model
  parameter, not an augment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from bench.errors import LossbenchError
from bench.registry import Registry

AUGMENTS = Registry("augment")
EXTRA = "extra"  # the family of the names that may follow a base pipeline after "+"

#: ImageNet channel statistics of the PyTorch reference script (for ``imagenet_standard``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Luma weights of torchvision's ``rgb_to_grayscale`` (ITU-R 601-2), used by colour jitter.
_GRAY = (0.2989, 0.587, 0.114)


# -- ops --------------------------------------------------------------------------------------
class Op:
    """One step of a pipeline: ``params`` draws per-sample parameters, ``apply`` uses them.

    ``when`` is "train" (random, training only), "eval" (evaluation only) or "both"
    (deterministic); ``order`` fixes the position in a pipeline. Tests call ``params`` and
    ``apply`` separately to check an op against its drawn parameters.
    """

    name = "op"
    order = 0
    when = "train"

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        return ()

    def apply(self, x: Tensor, *params: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(x, *self.params(x, generator))

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _uniform(n: int | tuple[int, ...], low: float, high: float, x: Tensor,
             generator: torch.Generator) -> Tensor:
    """Uniform draws in [low, high) on ``x``'s device (float32)."""
    shape = (n,) if isinstance(n, int) else n
    u = torch.rand(shape, generator=generator, device=x.device)
    return u.mul_(high - low).add_(low)


class Normalize(Op):
    """Per-channel ``(x - mean) / std``; mean/std on the [0, 1] scale."""

    name, order, when = "normalize", 60, "both"

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = tuple(map(float, mean)), tuple(map(float, std))
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def apply(self, x: Tensor, *params: Tensor) -> Tensor:
        key = (x.device, x.dtype)
        if key not in self._cache:
            def as_tensor(v: tuple[float, ...]) -> Tensor:
                return torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)

            self._cache[key] = (as_tensor(self.mean), as_tensor(self.std))
        mean, std = self._cache[key]
        return (x - mean) / std


class PixelMean(Op):
    """``x - mean`` with ``mean`` the training set's mean image [C, H, W] ([0, 1] scale)."""

    name, order, when = "pixel_mean", 5, "both"

    def __init__(self, mean: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self._cache: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def apply(self, x: Tensor, *params: Tensor) -> Tensor:
        key = (x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)[None]
        return x - self._cache[key]

    def __repr__(self) -> str:
        return f"PixelMean(mean=<{'x'.join(map(str, self.mean.shape))} image>)"


class RandomCrop(Op):
    """Zero-pad by ``pad`` pixels, then crop a random window of the input size (per sample).

    The window's top-left corner (dy, dx) in the padded image is uniform in [0, 2 pad]^2;
    the crop gathers flat indices, so each output is exactly a window of the padded input.
    """

    name, order = "crop", 10

    def __init__(self, pad: int = 4) -> None:
        self.pad = int(pad)

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        n = x.shape[0]
        offsets = torch.randint(0, 2 * self.pad + 1, (2, n), generator=generator,
                                device=x.device)
        return offsets[0], offsets[1]

    def apply(self, x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p = self.pad
        width = w + 2 * p
        padded = functional.pad(x, (p, p, p, p)).reshape(n, c, -1)
        dev = x.device
        window = (torch.arange(h, device=dev)[:, None] * width
                  + torch.arange(w, device=dev)).reshape(-1)  # flat indices at offset (0, 0)
        index = (dy * width + dx)[:, None] + window
        return padded.gather(2, index[:, None, :].expand(n, c, h * w)).view(n, c, h, w)


class RandomFlip(Op):
    """Horizontal flip of each sample with probability ``p`` (a per-sample mask)."""

    name, order = "flip", 20

    def __init__(self, p: float = 0.5) -> None:
        self.p = float(p)

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        return (torch.rand(x.shape[0], generator=generator, device=x.device) < self.p,)

    def apply(self, x: Tensor, mask: Tensor) -> Tensor:
        return torch.where(mask[:, None, None, None], x.flip(-1), x)


def rotate(x: Tensor, degrees: Tensor) -> Tensor:
    """Rotate each sample counter-clockwise by ``degrees[b]`` about the image centre.

    Bilinear, zero fill (black, as torchvision's ``RandomRotation`` on a PIL image). The
    normalised-coordinate matrix is corrected for the aspect ratio so non-square images
    rotate rigidly.
    """
    n, _, h, w = x.shape
    rad = degrees.to(torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin * (h / w), zero], -1),
                         torch.stack([sin * (w / h), cos, zero], -1)], 1)
    grid = functional.affine_grid(theta.to(x.dtype), [n, x.shape[1], h, w], align_corners=False)
    return functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                  align_corners=False)


class RandomRotation(Op):
    """Rotation by an angle uniform in [-degrees, degrees] (mixing paper, CINIC-10: 15)."""

    name, order = "rotation", 30

    def __init__(self, degrees: float = 15.0) -> None:
        self.degrees = float(degrees)

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        return (_uniform(x.shape[0], -self.degrees, self.degrees, x, generator),)

    def apply(self, x: Tensor, angles: Tensor) -> Tensor:
        return rotate(x, angles)


class ColorJitter(Op):
    """Brightness, contrast, saturation with per-sample factors in [1 - s, 1 + s].

    As torchvision's ``ColorJitter(0.4, 0.4, 0.4)``: each adjustment blends the image with a
    reference (black; the mean grey level; the grey image) and clamps to [0, 1]; factors and
    the order of the three adjustments are drawn per sample, as torchvision's per-image
    transform does. No hue (the mixing paper's Table 6 gives no parameters; 0.4 each is the
    common CIFAR setting).
    """

    name, order = "jitter", 40

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> None:
        self.strength = (float(brightness), float(contrast), float(saturation))

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        n = x.shape[0]
        factors = torch.stack([_uniform(n, max(0.0, 1 - s), 1 + s, x, generator)
                               for s in self.strength], 1)
        order = torch.rand((n, 3), generator=generator, device=x.device).argsort(1)
        return factors, order

    def apply(self, x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
        weights = torch.tensor(_GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        for step in range(3):
            which = order[:, step, None, None, None]
            f = factors.gather(1, order[:, step, None]).to(x.dtype)[:, :, None, None]
            gray = (x * weights).sum(1, keepdim=True) if x.shape[1] == 3 else x
            # the reference: 0 (brightness), mean grey (contrast) or the grey image (saturation)
            other = (gray * (which == 2) + gray.mean((1, 2, 3), keepdim=True) * (which == 1))
            x = torch.lerp(other, x, f).clamp_(0.0, 1.0)  # f x + (1 - f) other
        return x


class RandomErasing(Op):
    """Random Erasing (Zhong et al., AAAI 2020, Algorithm 1), per sample.

    Defaults are the paper's classification settings: p = 0.5, erased area s_l = 0.02 to
    s_h = 0.4 of the image, aspect ratio r_e uniform in [r_1, 1 / r_1] with r_1 = 0.3; each
    erased pixel gets "a random value in [0, 255]", here uniform in [0, 1] per pixel and
    channel. Erasing runs just before normalisation, which is the same as torchvision's place
    after ``Normalize`` with values ``(u - mean) / std``. Size first (h = round(sqrt(S_e r_e)),
    w = round(sqrt(S_e / r_e))), then a position uniform over the positions where the
    rectangle fits (as the authors' code), retried up to ``attempts`` times; a sample with no
    fitting draw stays unchanged.
    """

    name, order = "erasing", 50

    def __init__(self, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
                 r1: float = 0.3, attempts: int = 100) -> None:
        self.p, self.area, self.r1, self.attempts = float(p), tuple(area), float(r1), attempts

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        n, _, h, w = x.shape
        k = self.attempts
        target = _uniform((n, k), *self.area, x, generator) * (h * w)
        aspect = _uniform((n, k), self.r1, 1.0 / self.r1, x, generator)
        eh = torch.sqrt(target * aspect).round().long()
        ew = torch.sqrt(target / aspect).round().long()
        fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
        first = fits.float().argmax(1, keepdim=True)  # first fitting attempt (0 if none)
        eh, ew = eh.gather(1, first)[:, 0], ew.gather(1, first)[:, 0]
        u = torch.rand((2, n), generator=generator, device=x.device)
        top = (u[0] * (h - eh + 1)).long().clamp_max_(h - eh)
        left = (u[1] * (w - ew + 1)).long().clamp_max_(w - ew)
        apply = (torch.rand(n, generator=generator, device=x.device) < self.p) & fits.any(1)
        boxes = torch.stack([top, left, eh, ew], 1)
        values = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return boxes, apply, values

    def apply(self, x: Tensor, boxes: Tensor, apply: Tensor, values: Tensor) -> Tensor:
        return torch.where(box_mask(boxes, apply, x.shape[-2:])[:, None], values, x)


def box_mask(boxes: Tensor, active: Tensor, size: Sequence[int]) -> Tensor:
    """[B, H, W] mask of the rectangles ``boxes[b] = (top, left, height, width)`` of the
    samples where ``active``."""
    h, w = size
    ys = torch.arange(h, device=boxes.device)[None, :, None]
    xs = torch.arange(w, device=boxes.device)[None, None, :]
    top, left, bh, bw = (boxes[:, i, None, None] for i in range(4))
    inside = (ys >= top) & (ys < top + bh) & (xs >= left) & (xs < left + bw)
    return inside & active[:, None, None]


def resized_crop(x: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Crop ``boxes[b] = (top, left, height, width)`` (pixels, may be fractional) of each
    sample and resize it to ``size`` x ``size``, bilinear, in one ``grid_sample``.

    Same sampling as ``interpolate(crop, size, mode="bilinear", align_corners=False)``
    (edge pixels repeated), without antialiasing when shrinking.
    """
    n, c, h, w = x.shape
    boxes = boxes.to(torch.float32)
    top, left, bh, bw = boxes.unbind(1)
    zero = torch.zeros_like(top)
    theta = torch.stack([torch.stack([bw / w, zero, (2 * left + bw) / w - 1], -1),
                         torch.stack([zero, bh / h, (2 * top + bh) / h - 1], -1)], 1)
    grid = functional.affine_grid(theta.to(x.dtype), [n, c, size, size], align_corners=False)
    return functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                  align_corners=False)


class RandomResizedCrop(Op):
    """torchvision's ``RandomResizedCrop(size)`` default recipe, per sample.

    Up to 10 draws of an area fraction uniform in ``scale`` and a log-uniform aspect ratio in
    ``ratio``; the first box that fits is taken at a uniform position; otherwise the centre
    crop of the whole image with its ratio clamped to ``ratio``.
    """

    name, order = "resized_crop", 0

    def __init__(self, size: int = 224, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = int(size), tuple(scale), tuple(ratio)

    def params(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
        n, _, h, w = x.shape
        area = _uniform((n, 10), *self.scale, x, generator) * (h * w)
        log_ratio = _uniform((n, 10), math.log(self.ratio[0]), math.log(self.ratio[1]), x,
                             generator)
        aspect = torch.exp(log_ratio)
        bw = torch.sqrt(area * aspect).round().long()
        bh = torch.sqrt(area / aspect).round().long()
        fits = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
        first = fits.float().argmax(1, keepdim=True)
        bw, bh = bw.gather(1, first)[:, 0], bh.gather(1, first)[:, 0]
        u = torch.rand((2, n), generator=generator, device=x.device)
        top = (u[0] * (h - bh + 1)).long().clamp_max_(h - bh)
        left = (u[1] * (w - bw + 1)).long().clamp_max_(w - bw)
        fb_h, fb_w = self._fallback(h, w)
        ok = fits.any(1)
        fallback = torch.tensor([(h - fb_h) // 2, (w - fb_w) // 2, fb_h, fb_w],
                                device=x.device)
        boxes = torch.stack([top, left, bh, bw], 1)
        return (torch.where(ok[:, None], boxes, fallback),)

    def _fallback(self, h: int, w: int) -> tuple[int, int]:
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            return int(round(w / self.ratio[0])), w
        if in_ratio > self.ratio[1]:
            return h, int(round(h * self.ratio[1]))
        return h, w

    def apply(self, x: Tensor, boxes: Tensor) -> Tensor:
        return resized_crop(x, boxes, self.size)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], self.size, self.size)


class CenterCrop(Op):
    """Evaluation view of ImageNet: resize the short side to ``resize``, centre-crop ``size``
    (one resample of the centred square of side ``short * size / resize``)."""

    name, order, when = "center_crop", 0, "eval"

    def __init__(self, size: int = 224, resize: int = 256) -> None:
        self.size, self.resize = int(size), int(resize)

    def apply(self, x: Tensor, *params: Tensor) -> Tensor:
        n, _, h, w = x.shape
        side = min(h, w) * self.size / self.resize
        box = torch.tensor([(h - side) / 2, (w - side) / 2, side, side], device=x.device)
        return resized_crop(x, box.expand(n, 4), self.size)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], self.size, self.size)


# -- pipelines --------------------------------------------------------------------------------
class Augment:
    """A named pipeline: ``augment(x, generator, train)`` -> augmented batch.

    ``x`` is ``[B, *input_shape]`` float in [0, 1] on any device; ``generator`` lives on the
    same device. ``output_shape`` is the per-sample shape the model sees.
    """

    def __init__(self, name: str, ops: Sequence[Op], input_shape: tuple[int, ...]) -> None:
        self.name, self.ops, self.input_shape = name, tuple(ops), input_shape
        shapes = []
        for skip in ("eval", "train"):
            shape = input_shape
            for op in self.ops:
                if op.when != skip:
                    shape = op.output_shape(shape)
            shapes.append(shape)
        assert shapes[0] == shapes[1], f"{name}: train and eval shapes differ: {shapes}"
        self.output_shape = shapes[0]

    def __call__(self, x: Tensor, generator: torch.Generator, train: bool = True) -> Tensor:
        if not self.ops:
            return x
        self._check(x, generator)
        skip = "eval" if train else "train"
        for op in self.ops:
            if op.when != skip:
                x = op(x, generator)
        return x

    def _check(self, x: Tensor, generator: torch.Generator) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point() \
                or tuple(x.shape[1:]) != self.input_shape:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise LossbenchError(f"augment {self.name!r}: expected a float batch [B, "
                                 f"{', '.join(map(str, self.input_shape))}]; got {got}")
        if generator.device.type != x.device.type:
            raise LossbenchError(f"augment {self.name!r}: the generator is on "
                                 f"{generator.device}, the batch on {x.device}; create the "
                                 "generator on the batch's device")

    def __repr__(self) -> str:
        return f"Augment({self.name!r}, ops={list(self.ops)!r})"


Builder = Callable[[tuple[int, ...], Any, Any], list[Op]]


STATS = ("channel", "pixel")  # what mean/std a pipeline is built with (augment_stats)


def register_augment(name: str, *, family: str = "image",
                     stats: str = "channel") -> Callable[[Builder], Builder]:
    """Register ``builder(input_shape, mean, std) -> list[Op]`` as ``name``.

    ``family="extra"`` makes ``name`` an extra that may follow a base pipeline after "+".
    ``stats``: ``channel`` (mean/std per channel, ``channel_stats``) or ``pixel`` (mean is the
    training set's mean image [C, H, W], std None, ``pixel_mean``); ``augment_stats`` computes
    whichever the pipeline names.
    """
    assert stats in STATS, f"stats must be one of {STATS}"
    return AUGMENTS.register(name, family=family, stats=stats)


def list_augments(family: str | None = None) -> list[str]:
    """Registered names (base pipelines and extras), optionally of one family."""
    return AUGMENTS.names(family)


def get_augment(name: str, *, input_shape: Sequence[int], mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> Augment:
    """Build pipeline ``name`` (``base[+extra...]``) for samples of ``input_shape``.

    ``mean``/``std`` (per channel, [0, 1] scale) are needed by every pipeline that normalises;
    compute them once on the training set with ``channel_stats``.
    """
    if not isinstance(name, str) or not name:
        raise LossbenchError(f"augment: expected a name such as 'cifar_standard'; got {name!r}")
    base, *extras = name.split("+")
    bases = [n for n in list_augments() if AUGMENTS.get(n).family != EXTRA]
    if base not in bases:
        raise LossbenchError(f"Unknown augment {base!r} in {name!r}. Known augments: "
                             f"{', '.join(bases)} (then extras joined by '+': "
                             f"{', '.join(list_augments(EXTRA))})")
    shape = tuple(int(d) for d in input_shape)
    ops = list(AUGMENTS.get(base).builder(shape, mean, std))
    for extra in extras:
        if extra not in list_augments(EXTRA):
            hint = " (dropout is a model parameter, not an augment)" if extra == "dropout" else ""
            raise LossbenchError(f"Unknown augment extra {extra!r} in {name!r}. Known extras: "
                                 f"{', '.join(list_augments(EXTRA))}{hint}")
        ops += AUGMENTS.get(extra).builder(shape, mean, std)
    names = [op.name for op in ops]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LossbenchError(f"augment {name!r} applies {', '.join(twice)} twice; "
                             f"{base!r} already contains it")
    return Augment(name, sorted(ops, key=lambda op: op.order), shape)


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 1:
        raise LossbenchError(f"augment: input_shape must be (C, H, W) for an image pipeline; "
                             f"got {shape}")
    return shape  # type: ignore[return-value]


def _normalize(shape: tuple[int, ...], mean: Any, std: Any) -> Normalize:
    c = _image_shape(shape)[0]
    if mean is None or std is None:
        raise LossbenchError("augment: this pipeline normalises; pass mean= and std= (per "
                             "channel, [0, 1] scale), e.g. from bench.augment.channel_stats("
                             "X_train_uint8)")
    mean, std = tuple(map(float, mean)), tuple(map(float, std))
    if len(mean) != c or len(std) != c or min(std) <= 0 or not all(map(math.isfinite, mean)):
        raise LossbenchError(f"augment: mean and std must hold {c} finite values (std > 0), "
                             f"one per channel; got mean={mean}, std={std}")
    return Normalize(mean, std)


@register_augment("none", family="tabular")
def _none(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    return []


@register_augment("normalize")
def _normalize_only(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    return [_normalize(shape, mean, std)]


@register_augment("cifar_standard")
def _cifar_standard(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    return [_normalize(shape, mean, std), RandomCrop(4), RandomFlip(0.5)]


@register_augment("cinic_standard")
def _cinic_standard(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    return _cifar_standard(shape, mean, std) + [RandomRotation(15.0)]


def _pixel_mean(shape: tuple[int, ...], mean: Any, name: str) -> PixelMean:
    image = np.asarray(mean if mean is not None else (), dtype=np.float64)
    if image.shape != _image_shape(shape):
        got = "none" if mean is None else f"shape {image.shape}"
        raise LossbenchError(f"augment {name!r} subtracts the per-pixel mean image: pass mean= "
                             f"of shape {shape} ([0, 1] scale), e.g. from bench.augment."
                             f"augment_stats({name!r}, X_train_uint8); got {got}")
    if not np.isfinite(image).all():
        raise LossbenchError(f"augment {name!r}: the mean image must be finite")
    return PixelMean(image)


@register_augment("gce_standard", stats="pixel")
def _gce_standard(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    return [_pixel_mean(shape, mean, "gce_standard"), RandomCrop(4), RandomFlip(0.5)]


@register_augment("imagenet_standard")
def _imagenet_standard(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    return [_normalize(shape, mean, std), RandomResizedCrop(224), RandomFlip(0.5),
            CenterCrop(224, 256)]


@register_augment("erasing", family=EXTRA)
def _erasing(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    _image_shape(shape)
    return [RandomErasing()]


@register_augment("jitter", family=EXTRA)
def _jitter(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    if _image_shape(shape)[0] not in (1, 3):
        raise LossbenchError(f"augment 'jitter': needs 1 or 3 channels; got {shape[0]}")
    return [ColorJitter()]


@register_augment("rotation", family=EXTRA)
def _rotation(shape: tuple[int, ...], mean: Any, std: Any) -> list[Op]:
    _image_shape(shape)
    return [RandomRotation(15.0)]


# -- statistics -------------------------------------------------------------------------------
def channel_stats(images: Tensor | np.ndarray, chunk: int = 4096,
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images ``[N, C, H, W]``, [0, 1] scale.

    Exact: integer sums of x and x^2 per channel (Python ints), so the result does not depend
    on the chunking or the device; memory stays at one chunk.
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[0] == 0:
        raise LossbenchError(f"channel_stats: expected uint8 images [N, C, H, W]; got "
                             f"{x.dtype} {tuple(x.shape)}")
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        raise LossbenchError(f"channel_stats: shape {tuple(x.shape)} looks channels-last; "
                             "pass [N, C, H, W] (e.g. X.transpose(0, 3, 1, 2))")
    c = x.shape[1]
    s1, s2 = [0] * c, [0] * c
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk].transpose(0, 1).reshape(c, -1).long()
        sums, squares = part.sum(1).tolist(), part.square().sum(1).tolist()
        s1 = [a + b for a, b in zip(s1, sums, strict=True)]
        s2 = [a + b for a, b in zip(s2, squares, strict=True)]
    n = x.numel() // c
    mean = tuple(a / n / 255.0 for a in s1)
    std = tuple(math.sqrt((n * b - a * a) / (n * n)) / 255.0 for a, b in zip(s1, s2, strict=True))
    return mean, std


def pixel_mean(images: Tensor | np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Mean image [C, H, W] of uint8 images ``[N, C, H, W]``, [0, 1] scale (float64).

    Exact: integer sums per pixel (int64 holds 255 x 2^55 images), so chunking and the order of
    the rows do not change the result.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[0] == 0:
        raise LossbenchError(f"pixel_mean: expected uint8 images [N, C, H, W]; got {x.dtype} "
                             f"{x.shape}")
    total = np.zeros(x.shape[1:], dtype=np.int64)
    for start in range(0, x.shape[0], chunk):
        total += x[start:start + chunk].sum(axis=0, dtype=np.int64)
    return total / (x.shape[0] * 255.0)


def augment_stats(name: str, images: Tensor | np.ndarray) -> tuple[Any, Any]:
    """``(mean, std)`` to build pipeline ``name`` with, from the training images (uint8
    ``[N, C, H, W]``): the mean image and None for a ``pixel`` pipeline (``gce_standard``),
    per-channel ``channel_stats`` for the others."""
    base = name.split("+")[0] if isinstance(name, str) else name
    if base in AUGMENTS and AUGMENTS.get(base).meta.get("stats") == "pixel":
        return pixel_mean(images), None
    return channel_stats(images)


def _benchmark() -> None:
    """Print images/s of each pipeline on the available device (``python -m bench.augment``)."""
    import time

    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator(device=device).manual_seed(0)
    for name, shape, batch in [("cifar_standard", (3, 32, 32), 512),
                               ("cinic_standard+erasing+jitter", (3, 32, 32), 512),
                               ("imagenet_standard", (3, 256, 256), 128)]:
        aug = get_augment(name, input_shape=shape, mean=(0.5,) * 3, std=(0.25,) * 3)
        x = torch.rand((batch, *shape), device=device)
        aug(x, g)
        if device == "cuda":
            torch.cuda.synchronize()
        start, reps = time.perf_counter(), 20
        for _ in range(reps):
            aug(x, g)
        if device == "cuda":
            torch.cuda.synchronize()
        rate = reps * batch / (time.perf_counter() - start)
        print(f"{device} {name} {shape} batch {batch}: {rate:,.0f} images/s")


if __name__ == "__main__":
    _benchmark()
