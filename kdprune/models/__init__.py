"""Model zoo under the names of the standard KD code bases (RepDistiller, mdistiller). Every model is
`factory(num_classes, in_channels)` and takes any image size. Declared here (torch-free), built by
`create_model`."""

from __future__ import annotations

from kdprune.registry import Registry

MODELS: Registry = Registry("model")

# CIFAR ResNets (He et al. 2016, 6n+2 layers), widths as RepDistiller's resnet8..resnet110 and x4 variants.
for _depth in (8, 14, 20, 32, 44, 56, 110):
    MODELS.declare(f"resnet{_depth}", "kdprune.models.resnet_cifar:CifarResNet", args={"depth": _depth, "widths": (16, 16, 32, 64)})
for _depth in (8, 32):
    MODELS.declare(f"resnet{_depth}x4", "kdprune.models.resnet_cifar:CifarResNet", args={"depth": _depth, "widths": (32, 64, 128, 256)})
# torchvision's ImageNet ResNets, randomly initialised.
for _depth in (18, 34, 50):
    MODELS.declare(f"tv_resnet{_depth}", "kdprune.models.torchvision_resnet:TorchvisionResNet", args={"arch": f"resnet{_depth}"})


def create_model(name: str, num_classes: int, in_channels: int = 3):
    return MODELS.get(name)(num_classes=num_classes, in_channels=in_channels)
