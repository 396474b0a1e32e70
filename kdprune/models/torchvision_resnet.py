"""torchvision's ImageNet ResNets (P1's ImageNet preset) as `tv_resnet18/34/50`: the same modules and
parameter names as torchvision.models.resnetXX(weights=None, num_classes=...), randomly initialised
(no pretrained weights), plus `.features(x)` (the flattened average-pooled embedding before `.fc`)
and a first convolution for `in_channels` other than 3."""

from __future__ import annotations

import torch
import torch.nn as nn


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet submodules under their own names (a torchvision state dict loads as is),
    with `features` split out of `forward`."""

    def __init__(self, arch: str, num_classes: int, in_channels: int = 3):
        super().__init__()
        import torchvision.models as tvm

        net = getattr(tvm, arch)(weights=None, num_classes=num_classes)
        if in_channels != 3:
            old = net.conv1
            net.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision inits it
        # Adopt torchvision's submodules as ours, keeping their names (conv1, bn1, ..., layer4, avgpool, fc).
        for name, module in net.named_children():
            self.add_module(name, module)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
