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
# CIFAR Wide ResNets, VGGs (with BN), MobileNetV2 (width 0.5), ShuffleNets and the CIFAR ResNet50, under
# RepDistiller's model_dict names (docs/zoo.md lists every model with its source and size).
for _depth, _widen in ((16, 1), (16, 2), (40, 1), (40, 2)):
    MODELS.declare(f"wrn_{_depth}_{_widen}", "kdprune.models.wrn:WideResNet", args={"depth": _depth, "widen_factor": _widen})
for _depth in (8, 11, 13, 16, 19):
    MODELS.declare(f"vgg{_depth}", "kdprune.models.vgg:VGG", args={"depth": _depth})
MODELS.declare("MobileNetV2", "kdprune.models.mobilenetv2:MobileNetV2")
MODELS.declare("ShuffleV1", "kdprune.models.shufflenet:ShuffleNetV1")
MODELS.declare("ShuffleV2", "kdprune.models.shufflenet:ShuffleNetV2")
MODELS.declare("ResNet50", "kdprune.models.resnetv2:CifarBottleneckResNet")
# torchvision's ImageNet ResNets, randomly initialised, and mdistiller's ImageNet MobileNet (V1).
for _depth in (18, 34, 50):
    MODELS.declare(f"tv_resnet{_depth}", "kdprune.models.torchvision_resnet:TorchvisionResNet", args={"arch": f"resnet{_depth}"})
MODELS.declare("MobileNet", "kdprune.models.mobilenet:MobileNetV1")
# Dataset distillation's ConvNet-3 (DC/DSA/DM; P4): 3 x [conv 128, instance norm, ReLU, avg-pool]
MODELS.declare("ConvNet", "kdprune.models.convnet:ConvNet", sized=True)  # its linear layer depends on the image size


def create_model(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32, **options):
    """`image_size` reaches only the models declared `sized` (the others pool globally: any size);
    `options`: a model's own keyword arguments (ConvNet's `width`, `depth`)."""
    sized = {"image_size": image_size} if MODELS.meta(name).get("sized") else {}
    return MODELS.get(name)(num_classes=num_classes, in_channels=in_channels, **sized, **options)
