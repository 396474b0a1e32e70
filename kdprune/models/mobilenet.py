"""MobileNet (V1, Howard et al. 2017) for ImageNet as mdistiller's models/imagenet/mobilenetv1.py has
it (the student of its ResNet34/ResNet50 -> MobileNet ImageNet runs), declared as `MobileNet`: a
stride-2 3x3 stem to 32 channels, thirteen depthwise-separable units (3x3 depthwise + BN + ReLU, 1x1
pointwise + BN + ReLU) up to 1024 channels, five stride-2 steps in all (224 -> 7), global average
pooling and one linear layer. Submodule names are mdistiller's (model.0 ... model.13, fc), so an
mdistiller state dict loads as is.

Changes for other inputs: adaptive average pooling instead of AvgPool2d(7) (the 7x7 maps of a
224x224 image: the same there, valid on any size), still at `model.14`; the stem reads
`in_channels`; and the classifier has `num_classes` outputs (mdistiller's is fixed at 1000)."""

from __future__ import annotations

import torch
import torch.nn as nn

# (output width, stride) of the depthwise-separable units after the stem.
UNITS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def _stem(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False), nn.BatchNorm2d(out_planes), nn.ReLU(inplace=True))


def _separable(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_planes, in_planes, 3, stride, 1, groups=in_planes, bias=False),
        nn.BatchNorm2d(in_planes),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_planes, out_planes, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3):
        super().__init__()
        layers = [_stem(in_channels, 32, 2)]
        planes = 32
        for width, stride in UNITS:
            layers.append(_separable(planes, width, stride))
            planes = width
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.model = nn.Sequential(*layers)
        self.fc = nn.Linear(planes, num_classes)
        # mdistiller leaves PyTorch's default init; so does this.

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.model(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
