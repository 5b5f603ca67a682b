"""Image models: published parameter counts, shapes on small inputs, dropout, training, init.

Parameter counts are checked for every model on the meta device (no memory, no init cost); real
forward passes on 1x8x8 and 1x16x16 inputs (output shape, dropout right before the classifier)
run for every model, the big ones under ``slow``; SGD steps use the small models.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.errors import LossbenchError
from bench.models import create_model, list_models
from bench.models.image.cifar_resnet import ShortcutA
from bench.models.image.shufflenet import channel_shuffle

CIFAR10 = ((3, 32, 32), 10)
IMAGENET = ((3, 224, 224), 1000)

# name -> (input_shape, n_classes, parameters, where the figure is published)
PUBLISHED = {
    # He et al. 2016 Table 6 (0.27M ... 1.7M); exact counts: akamaster/pytorch_resnet_cifar10.
    "resnet20": (*CIFAR10, 269_722),
    "resnet32": (*CIFAR10, 464_154),
    "resnet44": (*CIFAR10, 658_586),
    "resnet56": (*CIFAR10, 853_018),
    "resnet110": (*CIFAR10, 1_727_962),
    # kuangliu/pytorch-cifar models, thop counts of its README's "Accuracy detail" table (fork).
    "resnet18": (*CIFAR10, 11_173_962),
    "resnet34": (*CIFAR10, 21_282_122),
    "preact_resnet18": (*CIFAR10, 11_171_146),
    "resnext29_2x64d": (*CIFAR10, 9_128_778),
    "resnext29_32x4d": (*CIFAR10, 4_774_218),
    "shufflenet_v2": (*CIFAR10, 1_263_854),
    # torchvision model cards (num_params), 1000 classes.
    "resnet18_imagenet": (*IMAGENET, 11_689_512),
    "resnet34_imagenet": (*IMAGENET, 21_797_672),
    "resnet50_imagenet": (*IMAGENET, 25_557_032),
    "resnet101_imagenet": (*IMAGENET, 44_549_160),
    "resnext50_32x4d": (*IMAGENET, 25_028_904),
    "resnext101_32x8d": (*IMAGENET, 88_791_336),
    "shufflenet_v2_imagenet": (*IMAGENET, 2_278_604),
    # LeNet-5 as the PyTorch CIFAR-10 tutorial (two-scale paper Sec. 3.2: "over 50,000").
    "lenet5": (*CIFAR10, 62_006),
    # two-scale paper Sec. 3.3 MNIST net, hidden 100: 784*100 + 100 + 100*10 + 10.
    "fc2": ((1, 28, 28), 10, 79_510),
    # Wang et al. 2018 (YisenWang/ONL util.get_model): Keras' trainable count, by layer
    # 6 convs 832,088 + 6 BN 1,552 + dense 803,072 + classifier 2,570.
    "wang2018_cnn": (*CIFAR10, 1_639_282),
}

BIG = {"resnet34", "resnet34_imagenet", "resnet50_imagenet", "resnet101_imagenet",
       "resnext50_32x4d", "resnext101_32x8d"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_model(name: str, input_shape: tuple[int, ...], n_classes: int, **params) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, input_shape=input_shape, n_classes=n_classes, seed=0, **params)


def _by_size(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in names]


def test_every_image_model_has_a_published_count():
    assert set(list_models("image")) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_figure(name):
    input_shape, n_classes, expected = PUBLISHED[name]
    plain = _meta_model(name, input_shape, n_classes)
    assert _n_params(plain) == expected
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())  # dropout=0: none
    dropped = _meta_model(name, input_shape, n_classes, dropout=0.2)
    assert _n_params(dropped) == expected  # dropout adds no parameters


@pytest.mark.parametrize("name", _by_size(sorted(PUBLISHED)))
@pytest.mark.parametrize("side", [8, 16])
def test_small_one_channel_inputs_run_with_dropout_before_the_classifier(name, side):
    model = create_model(name, input_shape=(1, side, side), n_classes=5, seed=0, dropout=0.2)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 1 and dropouts[0].p == 0.2
    calls: list[nn.Module] = []
    for m in model.modules():
        if not list(m.children()):
            m.register_forward_hook(lambda module, args, out: calls.append(module))
    out = model(torch.randn(3, 1, side, side))
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    assert isinstance(calls[-2], nn.Dropout)
    assert isinstance(calls[-1], nn.Linear) and calls[-1].out_features == 5


# (name, input side, lr, momentum, steps): plain SGD where it moves the loss within 5 steps;
# LeNet-5 at its own 32x32 with momentum, since its default-init logits start nearly flat.
SGD_RUNS = [
    ("resnet20", 8, 0.01, 0.0, 5),
    ("shufflenet_v2", 8, 0.01, 0.0, 5),
    ("fc2", 8, 0.01, 0.0, 5),
    ("lenet5", 32, 0.05, 0.9, 10),
    pytest.param("resnet18", 8, 0.01, 0.0, 5, marks=pytest.mark.slow),
    pytest.param("preact_resnet18", 8, 0.01, 0.0, 5, marks=pytest.mark.slow),
    pytest.param("resnext29_32x4d", 8, 0.01, 0.0, 5, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "side", "lr", "momentum", "steps"), SGD_RUNS)
def test_sgd_steps_lower_the_loss_on_a_fixed_batch(name, side, lr, momentum, steps):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, side, side, generator=gen)
    y = torch.arange(8) % 4
    model = create_model(name, input_shape=(3, side, side), n_classes=4, seed=1)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0]


@pytest.mark.parametrize("name", ["resnet20", "shufflenet_v2", "lenet5", "wang2018_cnn"])
def test_weights_depend_on_the_seed_only(name):
    def weights(seed: int) -> list[torch.Tensor]:
        model = create_model(name, input_shape=(1, 8, 8), n_classes=3, seed=seed)
        return [p.detach() for p in model.parameters()]

    torch.manual_seed(123)
    first = weights(0)
    torch.manual_seed(456)  # the global RNG state must not matter
    assert all(torch.equal(a, b) for a, b in zip(first, weights(0), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, weights(1), strict=True))


@pytest.mark.parametrize(("width", "expected"), [
    (0.5, 1_366_792), (1.5, 3_503_624), (2.0, 7_393_996),  # torchvision shufflenet_v2_x*_*
])
def test_shufflenet_width_multipliers_match_torchvision_counts(width, expected):
    model = _meta_model("shufflenet_v2_imagenet", *IMAGENET, width=width)
    assert _n_params(model) == expected


def test_lenet_pads_small_inputs_to_32_so_the_count_does_not_change():
    counts = {side: _n_params(_meta_model("lenet5", (1, side, side), 10)) for side in (8, 16, 28)}
    assert counts == {8: 61_706, 16: 61_706, 28: 61_706}  # LeNet-5's classic 1-channel count
    # larger inputs are not cropped: the first dense layer sees 16 x 13 x 13 features at 64x64
    assert _meta_model("lenet5", (3, 64, 64), 10).fc1.in_features == 16 * 13 * 13


# The GCE paper's models (Sec. 4.2): ResNet-18 on Fashion-MNIST (1x28x28), ResNet-34 on
# CIFAR-100: kuangliu's counts less the stem's two missing input channels (2 x 64 x 9), plus
# the 90 extra classes (90 x (512 + 1)).
@pytest.mark.parametrize(("name", "input_shape", "n_classes", "expected"), [
    ("resnet18", (1, 28, 28), 10, 11_173_962 - 2 * 64 * 9),
    ("resnet34", (3, 32, 32), 100, 21_282_122 + 90 * 513),
    ("resnet34", (3, 32, 32), 100, 21_328_292),  # kuangliu ResNet34(num_classes=100)
    ("wang2018_cnn", (3, 32, 32), 10, 1_639_282),
])
def test_gce_paper_models_have_the_standard_counts(name, input_shape, n_classes, expected):
    assert _n_params(_meta_model(name, input_shape, n_classes)) == expected


def test_wang_cnn_layers_init_and_the_codes_linear_embedding():
    model = create_model("wang2018_cnn", input_shape=(3, 32, 32), n_classes=10, seed=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 196, 196]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    assert model.fc1.in_features == 196 * 4 * 4 and model.fc1.out_features == 256
    fan = model.fc1.in_features + model.fc1.out_features  # Glorot-uniform bound sqrt(6 / fan)
    assert model.fc1.weight.abs().max().item() <= (6 / fan) ** 0.5
    assert model.fc1.weight.std().item() == pytest.approx((2 / fan) ** 0.5, rel=0.03)
    assert not any(m.bias.any() for m in convs)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    hidden = model.fc1(torch.flatten(model.features(x), 1))
    assert torch.allclose(model(x), model.fc2(torch.relu(hidden)), atol=1e-5)
    linear = create_model("wang2018_cnn", input_shape=(3, 32, 32), n_classes=10, seed=0,
                          hidden_relu=False).eval()
    hidden = linear.fc1(torch.flatten(linear.features(x), 1))
    assert (hidden < 0).any()  # the code's form: no ReLU between the two dense layers
    assert torch.allclose(linear(x), linear.fc2(hidden), atol=1e-5)
    with pytest.raises(LossbenchError, match="at least 8x8"):
        create_model("wang2018_cnn", input_shape=(1, 4, 4), n_classes=10, seed=0)


def test_fc2_hidden_width_is_a_parameter():
    model = _meta_model("fc2", (1, 8, 8), 10, hidden=32)
    assert _n_params(model) == 64 * 32 + 32 + 32 * 10 + 10


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, 2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()


def test_channel_shuffle_interleaves_the_two_halves():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize(("name", "layer", "fan"), [
    ("resnet20", "layer3.1.conv1", 64 * 9),  # akamaster: He-normal, fan_in
    ("resnet18_imagenet", "layer4.1.conv1", 512 * 9),  # torchvision: He-normal, fan_out
])
def test_kaiming_normal_init_as_the_reference(name, layer, fan):
    model = create_model(name, input_shape=(3, 32, 32), n_classes=10, seed=0)
    weight = model.get_submodule(layer).weight.detach()
    assert weight.std().item() == pytest.approx((2.0 / fan) ** 0.5, rel=0.03)


@pytest.mark.parametrize(("name", "params", "match"), [
    ("resnet20", {"dropout": 1.0}, "dropout"),
    ("lenet5", {"dropout": -0.1}, "dropout"),
    ("shufflenet_v2", {"width": 3.0}, "width"),
    ("fc2", {"hidden": 0}, "hidden"),
    ("resnet18", {"depth": 18}, "unexpected keyword"),
])
def test_bad_params_raise_one_line(name, params, match):
    with pytest.raises(LossbenchError, match=match):
        create_model(name, input_shape=(3, 32, 32), n_classes=10, seed=0, **params)


def test_conv_models_need_channels_height_width():
    with pytest.raises(LossbenchError, match="input_shape must be"):
        create_model("resnet20", input_shape=(64,), n_classes=10, seed=0)


def _torchvision_models():
    try:
        return pytest.importorskip("torchvision.models")
    except RuntimeError as err:  # a torchvision built for another torch raises on import
        pytest.skip(f"torchvision does not import: {err}")


@pytest.mark.parametrize(("name", "tv_name"), [
    ("resnet18_imagenet", "resnet18"), ("resnet34_imagenet", "resnet34"),
    ("resnet50_imagenet", "resnet50"), ("resnet101_imagenet", "resnet101"),
    ("resnext50_32x4d", "resnext50_32x4d"), ("resnext101_32x8d", "resnext101_32x8d"),
    ("shufflenet_v2_imagenet", "shufflenet_v2_x1_0"),
])
def test_state_dict_matches_torchvision(name, tv_name):
    models = _torchvision_models()
    with torch.device("meta"):
        reference = getattr(models, tv_name)(num_classes=1000)
    ours = _meta_model(name, *IMAGENET)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
