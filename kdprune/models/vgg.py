"""VGG with batch norm for CIFAR as RepDistiller's models/vgg.py has it (mdistiller's cifar/vgg.py is
the same network), under RepDistiller's model_dict names: `vgg8/11/13/16/19` are its `vggN_bn`.
Five conv blocks (3x3 conv + BN + ReLU; a block's last ReLU is applied in `features`), 2x2 max
pooling after the first three, global average pooling after the fifth and one linear layer of 512
inputs (the ImageNet VGG's three fully connected layers are gone). As in RepDistiller, the fourth
max pool runs only on 64x64 inputs (Tiny ImageNet). Submodule names are RepDistiller's (block0 ...
block4, classifier), so a RepDistiller state dict loads as is; `fc` names the classifier too.

No change to the network: the last pool is already adaptive in RepDistiller. Other inputs: the
first convolution reads `in_channels`; an image needs at least 8x8 pixels (three 2x2 max pools)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from kdprune.models.init import repdistiller_init

# Output widths of the five blocks, one list per block (RepDistiller's cfg "S", "A", "B", "D", "E").
CONFIGS: dict[int, list[list[int]]] = {
    8: [[64], [128], [256], [512], [512]],
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _block(widths: list[int], in_planes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_planes, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_planes = width
    return nn.Sequential(*layers[:-1])  # the block ends at its BN (RepDistiller reads the pre-activation there)


class VGG(nn.Module):
    def __init__(self, depth: int, num_classes: int, in_channels: int = 3):
        super().__init__()
        cfg = CONFIGS[depth]
        ins = [in_channels] + [widths[-1] for widths in cfg[:-1]]
        self.block0, self.block1, self.block2, self.block3, self.block4 = (_block(w, i) for w, i in zip(cfg, ins))
        self.pool0, self.pool1, self.pool2, self.pool3 = (nn.MaxPool2d(2, 2) for _ in range(4))
        self.pool4 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cfg[-1][-1], num_classes)
        repdistiller_init(self, conv_bias=True, linear="normal")

    @property
    def fc(self) -> nn.Linear:
        """The final linear layer (stored as `classifier`, RepDistiller's name)."""
        return self.classifier

    def features(self, x: torch.Tensor) -> torch.Tensor:
        tiny_imagenet = x.shape[2] == 64
        x = self.pool0(F.relu(self.block0(x)))
        x = self.pool1(F.relu(self.block1(x)))
        x = self.pool2(F.relu(self.block2(x)))
        x = F.relu(self.block3(x))
        if tiny_imagenet:
            x = self.pool3(x)
        x = F.relu(self.block4(x))
        return torch.flatten(self.pool4(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
