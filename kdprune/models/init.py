"""RepDistiller's weight initialisations, which differ by family only in what they do to biases and
linear layers: every convolution kaiming-normal (fan_out, relu), every BatchNorm weight 1 and bias 0."""

from __future__ import annotations

import torch.nn as nn


def repdistiller_init(model: nn.Module, conv_bias: bool = False, linear: str | None = None) -> None:
    """`conv_bias`: zero the convolutions' biases (VGG). `linear`: "normal" (weights N(0, 0.01), bias
    0: VGG, MobileNetV2), "zero_bias" (WRN) or None (PyTorch's default: the ResNets)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if conv_bias:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear:
            if linear == "normal":
                nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
