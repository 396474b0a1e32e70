"""Model zoo under the names of the standard KD code bases (RepDistiller, mdistiller).
Every model is `factory(num_classes, in_channels)`, and takes any image size."""
from __future__ import annotations

import torch.nn as nn

from kdprune.registry import Registry

MODELS: Registry = Registry("model")


def create_model(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    return MODELS.get(name)(num_classes=num_classes, in_channels=in_channels)


# Importing the zoo modules fills the registry.
from kdprune.models import resnet_cifar, torchvision_resnet  # noqa: E402,F401
