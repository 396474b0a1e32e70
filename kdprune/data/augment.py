"""Batched random crop + horizontal flip on image tensors, on whatever device the batch lives on.
Same views as torchvision's RandomCrop(size, padding, padding_mode=...) + RandomHorizontalFlip, but
drawn for a whole batch at once from an explicit CPU generator (deterministic per seed, identical
on every device). What a dataset's views are: kdprune.data.Augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdprune.data import PADDING_MODES, Augmentation


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, augmentation: Augmentation) -> torch.Tensor:
    """Crop each image of `x` (B x C x H x W) at offsets (top, left) of its copy padded by
    `augmentation.padding` pixels per side in its padding mode, then mirror the images where `flip`
    is true. Offsets are in [0, 2 * padding]."""
    b, c, h, w = x.shape
    p = augmentation.padding
    padded = F.pad(x, (p, p, p, p), mode=PADDING_MODES[augmentation.padding_mode])
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # B,1,H,1
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # B,1,1,W
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def draw_views(b: int, augmentation: Augmentation, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop offsets (top, left) in [0, 2 * padding] and flip flags of `b` images, on the CPU. The
    draw order is fixed (tops, lefts, flips) and the same with or without crops and flips, so a
    generator state gives the same views on every path."""
    offsets = 2 * augmentation.padding + 1
    top = torch.randint(0, offsets, (b,), generator=generator)
    left = torch.randint(0, offsets, (b,), generator=generator)
    flip = (torch.rand(b, generator=generator) < 0.5) & augmentation.flip
    return top, left, flip
