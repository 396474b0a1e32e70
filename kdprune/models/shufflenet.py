"""ShuffleNet V1 and V2 for CIFAR as RepDistiller's models/ShuffleNetv1.py and ShuffleNetv2.py have them
(mdistiller's cifar/ copies are the same networks), declared as `ShuffleV1` (groups 3, stage widths
240/480/960, 4/8/4 blocks) and `ShuffleV2` (net size 1: widths 116/232/464, 3/7/3 blocks, a 1x1
convolution to 1024 before the classifier). Both start with a 1x1 convolution to 24 channels at
full resolution (no stride, no max pool: CIFAR's small images). Submodule names are RepDistiller's
(conv1, bn1, layer1..3, conv2, bn2, linear), so a RepDistiller state dict loads as is; `fc` names
the final linear layer too. As in RepDistiller, the convolutions keep PyTorch's default init.

One change for other inputs: adaptive average pooling instead of a fixed 4x4 average pool (the 4x4
maps of a 32x32 image: the same there, valid on any size); the first convolution reads
`in_channels`."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[N, g * c, H, W] -> the channels reordered so that each group's channels interleave."""
    n, channels, h, w = x.shape
    return x.reshape(n, groups, channels // groups, h, w).transpose(1, 2).reshape(n, channels, h, w)


# -- ShuffleNet V1 --------------------------------------------------------------------------------


class ShuffleV1Block(nn.Module):
    """Grouped 1x1 conv, channel shuffle, 3x3 depthwise conv (with the stride), grouped 1x1 conv. A
    stride-2 block concatenates a 3x3 average-pooled copy of its input (so its branch makes only
    `out_planes` of the stage's width); a stride-1 block adds its input."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int):
        super().__init__()
        self.stride = stride
        mid = out_planes // 4
        self.first_groups = 1 if in_planes == 24 else groups  # the stem's 24 channels are not grouped
        self.conv1 = nn.Conv2d(in_planes, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)) if stride == 2 else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        shortcut = self.shortcut(x)
        return F.relu(torch.cat([out, shortcut], 1) if self.stride == 2 else out + shortcut)


class ShuffleNetV1(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, widths: tuple[int, ...] = (240, 480, 960), blocks=(4, 8, 4), groups: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        planes = 24
        stages = []
        for width, n in zip(widths, blocks):
            stage = []
            for i in range(n):
                # the first block's branch leaves room for the pooled input it concatenates
                stage.append(ShuffleV1Block(planes, width - planes if i == 0 else width, 2 if i == 0 else 1, groups))
                planes = width
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)

    @property
    def fc(self) -> nn.Linear:
        """The final linear layer (stored as `linear`, RepDistiller's name)."""
        return self.linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))


# -- ShuffleNet V2 --------------------------------------------------------------------------------


class ShuffleV2Block(nn.Module):
    """Half the channels pass through; the other half goes 1x1 conv, 3x3 depthwise conv, 1x1 conv;
    the halves are concatenated and shuffled."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        kept, branch = x[:, :half], x[:, half:]
        branch = F.relu(self.bn1(self.conv1(branch)))
        branch = F.relu(self.bn3(self.conv3(self.bn2(self.conv2(branch)))))
        return channel_shuffle(torch.cat([kept, branch], 1), 2)


class ShuffleV2Down(nn.Module):
    """The stride-2 unit that opens a stage: two branches on the whole input, each to half the
    stage's width (left: 3x3 depthwise, 1x1; right: 1x1, 3x3 depthwise, 1x1), concatenated and
    shuffled."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        mid = out_planes // 2
        self.conv1 = nn.Conv2d(in_planes, in_planes, 3, 2, 1, groups=in_planes, bias=False)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv2 = nn.Conv2d(in_planes, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_planes, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, widths: tuple[int, ...] = (116, 232, 464, 1024), blocks=(3, 7, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        planes = 24
        stages = []
        for width, n in zip(widths, blocks):
            stages.append(nn.Sequential(ShuffleV2Down(planes, width), *(ShuffleV2Block(width) for _ in range(n))))
            planes = width
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(planes, widths[-1], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(widths[-1])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(widths[-1], num_classes)

    @property
    def fc(self) -> nn.Linear:
        """The final linear layer (stored as `linear`, RepDistiller's name)."""
        return self.linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))
