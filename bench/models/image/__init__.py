"""Image models (mixing paper Tables 1, 2, 5, 6; two-scale paper Secs. 3.2-3.3), plain torch.

Importing this package registers every model with ``family="image"``. Each builder takes
``input_shape = (C, H, W)`` (1 channel for digits/MNIST, 3 for CIFAR; 8x8 inputs and up) and
``dropout`` (Table 6 of the mixing paper: p before the classifier; 0 = none).

| module | models |
|---|---|
| ``cifar_resnet`` | ``resnet20/32/44/56/110`` (He et al. 2016, CIFAR, option-A shortcuts) |
| ``resnet`` | ``resnet18/34`` (CIFAR form), ``resnet18/34/50/101_imagenet``, |
| | ``resnext50_32x4d``, ``resnext101_32x8d`` (ImageNet form, torchvision) |
| ``preact_resnet`` | ``preact_resnet18`` (CIFAR form) |
| ``resnext`` | ``resnext29_2x64d``, ``resnext29_32x4d`` (CIFAR) |
| ``shufflenet`` | ``shufflenet_v2`` (CIFAR form), ``shufflenet_v2_imagenet`` |
| ``lenet`` | ``lenet5`` |
| ``fc`` | ``fc2`` |
| ``wang_cnn`` | ``wang2018_cnn`` (Wang et al. 2018's shallow CNN, GCE paper Table 2) |
"""

from bench.models.image import (  # noqa: F401  (imported to register the models)
    cifar_resnet,
    fc,
    lenet,
    preact_resnet,
    resnet,
    resnext,
    shufflenet,
    wang_cnn,
)
