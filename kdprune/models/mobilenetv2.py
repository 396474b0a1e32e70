"""MobileNetV2 for CIFAR as CRD uses it: RepDistiller's models/mobilenetv2.py `mobile_half` (expansion
6, width multiplier 0.5; mdistiller's cifar/mobilenetv2.py is the same network), declared as
`MobileNetV2`, RepDistiller's model_dict name. A stride-2 3x3 stem, seven stages of inverted
residual blocks, a 1x1 convolution to 1280 channels (the width multiplier does not shrink it) and
one linear layer. Submodule names are RepDistiller's (conv1, blocks, conv2, classifier.0), so a
RepDistiller state dict loads as is; `fc` names the final linear layer too.

One change for other inputs: adaptive average pooling instead of AvgPool2d(input_size // 16,
ceil_mode=True) (a 2x2 pool on the 2x2 maps of a 32x32 image: the same there, valid on any size);
the stem reads `in_channels`."""

from __future__ import annotations

import torch
import torch.nn as nn

from kdprune.models.init import repdistiller_init

# (expansion, output width, blocks, stride of the first block) of each stage; expansion None is the model's own.
STAGES = [(1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2), (None, 96, 3, 1), (None, 160, 3, 2), (None, 320, 1, 1)]


def _conv_bn_relu(in_planes: int, out_planes: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out_planes), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise, 1x1 linear projection (all under `.conv`); a residual sum
    where stride and width allow it."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_planes * expansion
        self.residual = stride == 1 and in_planes == out_planes
        self.conv = nn.Sequential(
            nn.Conv2d(in_planes, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_planes, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_planes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, expansion: int = 6, width_mult: float = 0.5):
        super().__init__()
        planes = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(in_channels, planes, 3, 2)
        blocks = []
        for t, width, n, stride in STAGES:
            out = int(width * width_mult)
            stage = []
            for i in range(n):
                stage.append(InvertedResidual(planes, out, stride if i == 0 else 1, expansion if t is None else t))
                planes = out
            blocks.append(nn.Sequential(*stage))
        self.blocks = nn.ModuleList(blocks)
        last = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(planes, last, 1, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        repdistiller_init(self, linear="normal")

    @property
    def fc(self) -> nn.Linear:
        """The final linear layer (stored as `classifier.0`, RepDistiller's name)."""
        return self.classifier[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        return torch.flatten(self.avgpool(self.conv2(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
