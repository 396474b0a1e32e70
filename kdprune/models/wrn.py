"""Wide ResNets for CIFAR as RepDistiller's models/wrn.py has them (mdistiller's cifar/wrn.py is the
same network): `wrn_<depth>_<widen factor>`, depth = 6n + 4, pre-activation blocks, widths 16 and
16k, 32k, 64k. The submodules keep RepDistiller's names (block1.layer.0.convShortcut, bn1, fc), so a
RepDistiller state dict loads as is (kdprune.models.checkpoints).

One change for other inputs: adaptive average pooling instead of a fixed 8x8 average pool, the
same on 32x32 images and valid on any size; the first convolution reads `in_channels`."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from kdprune.models.init import repdistiller_init


class WideBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with an identity shortcut, or a 1x1 convolution shortcut
    on the pre-activated input where the width or the resolution changes."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.equal_in_out = in_planes == out_planes
        # RepDistiller's condition: a projection only where the widths differ (a stride-2 block
        # always widens here).
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.convShortcut is None else self.convShortcut(pre))


class WideStage(nn.Module):
    """RepDistiller's NetworkBlock: n blocks under `.layer`, the first one with the stride."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*(WideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1) for i in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen_factor: int, num_classes: int, in_channels: int = 3):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"Wide ResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.block1 = WideStage(n, widths[0], widths[1], 1)
        self.block2 = WideStage(n, widths[1], widths[2], 2)
        self.block3 = WideStage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        repdistiller_init(self, linear="zero_bias")  # convs: N(0, 2 / (k * k * out)), as RepDistiller writes it out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return torch.flatten(self.pool(F.relu(self.bn1(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
