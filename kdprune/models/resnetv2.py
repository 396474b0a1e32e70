"""The ImageNet-width ResNet50 adapted to CIFAR, as RepDistiller's models/resnetv2.py has it (mdistiller's
cifar/resnetv2.py is the same network), declared as `ResNet50`, RepDistiller's model_dict name: a
3x3 stride-1 stem without max pool, then torchvision's four bottleneck stages (3, 4, 6, 3 blocks of
widths 64 ... 512, expansion 4), global average pooling and one linear layer on 2048 features.
Submodule names are RepDistiller's (conv1, bn1, layer1..4 with `shortcut`, linear), so a
RepDistiller state dict loads as is; `fc` names the final linear layer too.

No change to the network: its pooling is already adaptive in RepDistiller. Other inputs: the stem
reads `in_channels`."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from kdprune.models.init import repdistiller_init


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out = self.expansion * planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # the stride on the 3x3, as torchvision
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


class CifarBottleneckResNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, blocks: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        planes = 64
        stages = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            stage = []
            for j in range(n):
                stage.append(Bottleneck(planes, width, 2 if (i > 0 and j == 0) else 1))
                planes = width * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)
        repdistiller_init(self)

    @property
    def fc(self) -> nn.Linear:
        """The final linear layer (stored as `linear`, RepDistiller's name)."""
        return self.linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))
