"""ConvNet, the network of dataset distillation (DC, DSA, DM: VICO-UoE/DatasetCondensation,
`networks.py` ConvNet with `get_default_convnet_setting()`): `depth` x [conv 3x3 of `width`
channels, instance norm (GroupNorm with one group per channel, affine), ReLU, 2x2 average pool],
then one linear layer on the flattened features. PyTorch's default initialisation, as the original.

Two details of the original kept: a one-channel input gets padding 3 in the first convolution
(MNIST's 28 -> 32); the linear layer's input size is measured by a forward pass of a blank image
of `image_size` (the original computes it from the size, which is the same for 32x32 and 28x28
and for the 8x8 digits too; measuring it cannot go wrong for other sizes)."""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 128, depth: int = 3, image_size: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for d in range(depth):
            padding = 3 if in_channels == 1 and d == 0 else 1
            layers += [nn.Conv2d(channels, width, 3, padding=padding), nn.GroupNorm(width, width, affine=True), nn.ReLU(inplace=True)]
            layers.append(nn.AvgPool2d(2, 2))
            channels = width
        self.body = nn.Sequential(*layers)
        with torch.no_grad():
            n_features = self.body(torch.zeros(1, in_channels, image_size, image_size)).numel()
        self.classifier = nn.Linear(n_features, num_classes)

    @property
    def fc(self) -> nn.Linear:
        """The final linear layer (stored as `classifier`, the original's name)."""
        return self.classifier

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened embedding (the original's `embed`: what DM matches)."""
        return torch.flatten(self.body(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
