"""Batch augmentation: each op against what it drew, pipelines, determinism, registry errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch.nn import functional

from bench.augment import (
    CenterCrop,
    ColorJitter,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomResizedCrop,
    RandomRotation,
    augment_stats,
    channel_stats,
    get_augment,
    list_augments,
    pixel_mean,
    rotate,
)
from bench.errors import LossbenchError

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
CIFAR = (3, 32, 32)
RANDOM_PIPELINES = ["cifar_standard", "cinic_standard", "cifar_standard+erasing",
                    "cinic_standard+jitter", "cifar_standard+rotation+jitter+erasing"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 16, shape: tuple[int, ...] = CIFAR, seed: int = 1) -> torch.Tensor:
    return torch.rand((n, *shape), generator=gen(seed))


def build(name: str, shape: tuple[int, ...] = CIFAR):
    return get_augment(name, input_shape=shape, mean=MEAN, std=STD)


def normalized(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_registry_lists_bases_and_extras():
    assert list_augments() == ["none", "normalize", "cifar_standard", "cinic_standard",
                               "gce_standard", "imagenet_standard", "erasing", "jitter",
                               "rotation"]
    assert list_augments("extra") == ["erasing", "jitter", "rotation"]


@pytest.mark.parametrize("name", ["none", "normalize", "imagenet_standard"] + RANDOM_PIPELINES)
@pytest.mark.parametrize("train", [True, False])
def test_shape_and_dtype_kept(name, train):
    shape = (3, 64, 48) if name == "imagenet_standard" else CIFAR
    aug = build(name, shape)
    y = aug(images(8, shape), gen(), train)
    out = (3, 224, 224) if name == "imagenet_standard" else shape
    assert y.shape == (8, *out) and aug.output_shape == out
    assert y.dtype == torch.float32 and bool(torch.isfinite(y).all())


def test_none_is_identity_for_tabular():
    x = torch.randn(5, 7)
    aug = get_augment("none", input_shape=(7,))
    assert aug(x, gen(), True) is x and aug.output_shape == (7,)


@pytest.mark.parametrize("name", RANDOM_PIPELINES + ["imagenet_standard"])
def test_deterministic_given_seed(name):
    shape = (3, 40, 40) if name == "imagenet_standard" else CIFAR
    aug, x = build(name, shape), images(16, shape)
    first, again, other = aug(x, gen(3), True), aug(x, gen(3), True), aug(x, gen(4), True)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    g = gen(3)  # consecutive batches from one generator differ too
    assert not torch.equal(aug(x, g, True), aug(x, g, True))


@pytest.mark.parametrize("name", RANDOM_PIPELINES + ["normalize"])
def test_eval_mode_applies_only_normalisation(name):
    x, g = images(), gen(5)
    state = g.get_state()
    y = build(name)(x, g, False)
    torch.testing.assert_close(y, normalized(x), rtol=0, atol=0)
    assert torch.equal(g.get_state(), state)  # eval draws nothing


def test_crop_is_a_shifted_window_of_the_zero_padded_input():
    x = images(400)
    op = RandomCrop(4)
    dy, dx = op.params(x, gen())
    y = op.apply(x, dy, dx)
    padded = functional.pad(x, (4, 4, 4, 4))
    b = 7  # one sample exactly: the window at its drawn offset, and no other window
    i, j = int(dy[b]), int(dx[b])
    assert torch.equal(y[b], padded[b, :, i:i + 32, j:j + 32])
    matches = [(a, c) for a in range(9) for c in range(9)
               if torch.equal(y[b], padded[b, :, a:a + 32, c:c + 32])]
    assert matches == [(i, j)]
    assert set(dy.tolist()) == set(range(9)) == set(dx.tolist())  # offsets 0..2*pad all drawn
    assert torch.equal(op(x, gen()), y)  # __call__ = apply(params) with the same draws


def test_flip_flips_exactly_the_masked_samples():
    x = images(200)
    op = RandomFlip(0.5)
    (mask,) = op.params(x, gen())
    y = op.apply(x, mask)
    assert torch.equal(y[mask], x[mask].flip(-1))
    assert torch.equal(y[~mask], x[~mask])
    assert 70 < int(mask.sum()) < 130  # p = 0.5 of 200 (fixed seed)


def test_channel_stats_exact_and_normalisation_gives_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    X = np.stack([rng.integers(0, 256, (300, 8, 8)), rng.integers(50, 100, (300, 8, 8)),
                  rng.binomial(255, 0.8, (300, 8, 8))], 1).astype(np.uint8)
    mean, std = channel_stats(X, chunk=7)  # chunking does not change the exact sums
    ref = X.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(1), rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(1), rtol=1e-12)
    aug = get_augment("cifar_standard", input_shape=(3, 8, 8), mean=mean, std=std)
    y = aug(torch.from_numpy(X).float() / 255, gen(), False).double()
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(y.std((0, 2, 3), correction=0),
                               torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-5)


def _uint8_images(n: int = 300, shape: tuple[int, ...] = (3, 8, 8)) -> np.ndarray:
    rng = np.random.default_rng(0)
    ramp = np.arange(int(np.prod(shape))).reshape(shape) % 200  # a mean that varies by pixel
    return (rng.integers(0, 56, (n, *shape)) + ramp).astype(np.uint8)


def test_pixel_mean_exact_and_augment_stats_per_pipeline():
    X = _uint8_images()
    mean = pixel_mean(X, chunk=7)
    np.testing.assert_allclose(mean, X.astype(np.float64).mean(0) / 255, rtol=1e-12)
    image, std = augment_stats("gce_standard", X)
    assert std is None and np.array_equal(image, mean)
    assert augment_stats("cifar_standard+erasing", X) == channel_stats(X)
    with pytest.raises(LossbenchError, match="uint8"):
        pixel_mean(X.astype(np.float32))


def test_gce_standard_subtracts_the_mean_image_then_pads_crops_and_flips():
    X = _uint8_images(64)
    mean, _ = augment_stats("gce_standard", X)
    aug = get_augment("gce_standard", input_shape=(3, 8, 8), mean=mean)
    assert [op.name for op in aug.ops] == ["pixel_mean", "crop", "flip"]
    x = torch.from_numpy(X).float() / 255
    centred = x - torch.from_numpy(mean).float()
    g = gen(2)
    state = g.get_state()
    torch.testing.assert_close(aug(x, g, False), centred, rtol=0, atol=0)  # eval: mean only
    assert torch.equal(g.get_state(), state)
    assert centred.double().mean(0).abs().max() < 1e-6  # every pixel centred, nothing scaled
    # train: the same draws as crop then flip applied by hand to the centred images
    crop, flip = RandomCrop(4), RandomFlip(0.5)
    g = gen(3)
    dy, dx = crop.params(centred, g)
    (mask,) = flip.params(centred, g)
    expected = flip.apply(crop.apply(centred, dy, dx), mask)
    torch.testing.assert_close(aug(x, gen(3), True), expected, rtol=0, atol=0)
    # the padded border is the mean image: zero after subtraction
    shifted = int(torch.nonzero((dy == 0) & (dx == 0))[0])
    assert torch.count_nonzero(crop.apply(centred, dy, dx)[shifted, :, :4, :4]) == 0


@pytest.mark.parametrize(("mean", "match"), [
    (None, "per-pixel mean image.*got none"),
    (MEAN, r"per-pixel mean image.*shape \(3, 8, 8\).*got shape \(3,\)"),
    (np.full((3, 8, 8), np.nan), "finite"),
])
def test_gce_standard_needs_the_mean_image(mean, match):
    with pytest.raises(LossbenchError, match=match):
        get_augment("gce_standard", input_shape=(3, 8, 8), mean=mean)


def test_channel_stats_rejects_float_and_channels_last():
    with pytest.raises(LossbenchError, match="uint8"):
        channel_stats(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(LossbenchError, match="channels-last"):
        channel_stats(np.zeros((2, 32, 32, 3), np.uint8))


def test_erasing_changes_only_a_rectangle():
    x = images(300)
    op = RandomErasing()
    boxes, apply, values = op.params(x, gen())
    y = op.apply(x, boxes, apply, values)
    changed = (y != x).any(1)  # [B, H, W]
    for b in range(300):
        top, left, h, w = boxes[b].tolist()
        if apply[b]:
            rect = torch.zeros(32, 32, dtype=torch.bool)
            rect[top:top + h, left:left + w] = True
            assert torch.equal(changed[b], rect), b  # all of the rectangle, nothing else
            assert torch.equal(y[b][:, rect], values[b][:, rect])
            assert 0.02 * 1024 - 2 * 32 <= h * w <= 0.4 * 1024 + 2 * 32  # area, up to rounding
        else:
            assert not bool(changed[b].any())
    assert 110 < int(apply.sum()) < 190  # p = 0.5
    # through a pipeline: normalize+erasing differs from normalize inside the rectangles only
    piped = build("normalize+erasing")(x, gen(), True)
    torch.testing.assert_close(piped, normalized(y))


def test_rotation_by_zero_is_identity_and_by_90_is_rot90():
    x = images(4, (3, 16, 32))
    torch.testing.assert_close(rotate(x, torch.zeros(4)), x, rtol=0, atol=1e-6)
    assert torch.equal(RandomRotation(0.0)(x, gen()).sub(x).abs().max() <= 1e-6,
                       torch.tensor(True))
    # counter-clockwise, rigid on a non-square image: the central 16 x 16 square maps to itself
    y = rotate(x, torch.full((4,), 90.0))
    torch.testing.assert_close(y[..., 8:24], x[..., 8:24].rot90(1, (-2, -1)),
                               rtol=0, atol=1e-5)
    (angles,) = RandomRotation(15.0).params(images(500), gen())
    assert -15 <= float(angles.min()) < -14 and 14 < float(angles.max()) <= 15


def test_jitter_factors_order_and_brightness():
    x = images(200)
    op = ColorJitter()
    factors, order = op.params(x, gen())
    assert float(factors.min()) >= 0.6 and float(factors.max()) <= 1.4
    assert torch.equal(order.sort(1).values, torch.arange(3).expand(200, 3))
    assert len({tuple(o) for o in order.tolist()}) == 6  # every order drawn, per sample
    ones = torch.ones_like(factors)
    torch.testing.assert_close(op.apply(x, ones, order), x)  # factors 1: identity
    bright = ones.clone()
    bright[:, 0] = factors[:, 0]
    torch.testing.assert_close(op.apply(x, bright, order),
                               (x * factors[:, 0, None, None, None]).clamp(0, 1))
    saturation_zero = torch.tensor([[1.0, 1.0, 0.0]]).expand(200, 3)  # grey image
    grey = op.apply(x, saturation_zero, order)
    assert float((grey - grey[:, :1]).abs().max()) < 1e-6


def test_resized_crop_boxes_and_pixels():
    x = images(300, (3, 60, 80))
    op = RandomResizedCrop(24)
    (boxes,) = op.params(x, gen())
    top, left, h, w = boxes.T
    assert bool(((top >= 0) & (left >= 0) & (top + h <= 60) & (left + w <= 80)).all())
    area, ratio = (h * w).double() / (60 * 80), w.double() / h
    assert float(area.min()) >= 0.07 and float(area.max()) <= 1.0
    assert float(ratio.min()) >= 0.7 and float(ratio.max()) <= 1.4
    y = op.apply(x, boxes)
    b = 3  # one sample against interpolate of its crop
    t, lf, hh, ww = boxes[b].tolist()
    ref = functional.interpolate(x[b:b + 1, :, t:t + hh, lf:lf + ww], size=(24, 24),
                                 mode="bilinear", align_corners=False)
    torch.testing.assert_close(y[b:b + 1], ref, rtol=0, atol=1e-5)


def test_imagenet_eval_is_centre_crop_then_normalisation():
    x = images(2, (3, 256, 256))
    # float32 grid coordinates: sub-pixel error ~1e-5 at 256 px; a one-pixel shift gives ~0.3
    torch.testing.assert_close(CenterCrop(224, 256).apply(x), x[..., 16:240, 16:240],
                               rtol=0, atol=5e-5)
    aug = build("imagenet_standard", (3, 256, 256))
    torch.testing.assert_close(aug(x, gen(), False), normalized(x[..., 16:240, 16:240]),
                               rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "match"),
    [("cifar", "Unknown augment 'cifar'.*Known augments: none, normalize, cifar_standard"),
     ("cinic_standard+dropout", "Known extras: erasing, jitter, rotation.*model parameter"),
     ("erasing+jitter", "Unknown augment 'erasing'"),
     ("cinic_standard+rotation", "rotation twice"), ("", "expected a name")],
)
def test_bad_names(name, match):
    with pytest.raises(LossbenchError, match=match):
        build(name)


def test_bad_inputs():
    with pytest.raises(LossbenchError, match="pass mean= and std="):
        get_augment("cifar_standard", input_shape=CIFAR)
    with pytest.raises(LossbenchError, match="3 finite values"):
        get_augment("normalize", input_shape=CIFAR, mean=(0.5,), std=(0.2,))
    with pytest.raises(LossbenchError, match=r"\(C, H, W\)"):
        get_augment("cifar_standard", input_shape=(10,), mean=MEAN, std=STD)
    with pytest.raises(LossbenchError, match=r"expected a float batch \[B, 3, 32, 32\]"):
        build("cifar_standard")(torch.rand(2, 3, 28, 28), gen(), True)


def test_throughput_sanity(capsys):
    """Prints images/s of the longest CIFAR pipeline on this CPU (never asserted)."""
    aug, x = build("cinic_standard+jitter+erasing"), images(128)
    g = gen()
    aug(x, g, True)
    start = time.perf_counter()
    for _ in range(2):
        y = aug(x, g, True)
    rate = 2 * 128 / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\naugment cinic_standard+jitter+erasing, CPU: {rate:,.0f} images/s")
    assert bool(torch.isfinite(y).all())
