"""Batched random crop (zero padding) + horizontal flip on image tensors, on whatever device the
batch lives on. Same views as torchvision's RandomCrop(size, padding) + RandomHorizontalFlip, but
drawn for a whole batch at once from an explicit generator (deterministic per seed)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, padding: int) -> torch.Tensor:
    """Crop each image of `x` (B x C x H x W) at offsets (top, left) of its zero-padded copy, then
    mirror the images where `flip` is true. Offsets are in [0, 2 * padding]."""
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # B,1,H,1
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # B,1,1,W
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_crop_flip(x: torch.Tensor, padding: int, generator: torch.Generator, hflip: bool = True) -> torch.Tensor:
    b = x.shape[0]
    dev = generator.device
    top = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev).to(x.device)
    flip = (torch.rand(b, generator=generator, device=dev) < 0.5).to(x.device) & hflip
    return crop_flip(x, top, left, flip, padding)
