"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021), as VICO-UoE/DatasetCondensation
`utils.py` implements it (`ParamDiffAug`, `DiffAugment` and the `rand_*` functions, themselves after
mit-han-lab/data-efficient-gans).

A strategy string names transforms joined by "_" (default `color_crop_cutout_flip_scale_rotate`).
Each call picks ONE of them uniformly at random (the original's `aug_mode = 'S'`) and applies it:

- color: brightness x + (b - 0.5) * 1.0, then saturation (x - mean over channels) * 2.0 s + that
  mean, then contrast (x - mean of the image) * (c + 0.5) + that mean; b, s, c ~ U[0, 1);
- crop: shift by whole pixels, up to int(0.125 * size + 0.5) each way, zeros shifted in;
- cutout: zero a square of int(0.5 * size + 0.5) pixels centred at a random pixel (clipped);
- flip: left-right with probability 0.5;
- scale: stretch x and y by factors in U[1 / 1.2, 1.2) (affine grid, bilinear, zero padding);
- rotate: by an angle in U[-15, 15) degrees (same sampling).

Every transform is differentiable with respect to the images (products, gathers and grid_sample).

Siamese: one random draw (`draw`, a `Draw` holding the chosen transform and its parameters) is
applied to the real batch and to the synthetic batch of a matching step, and to every image of both
(the original copies the first image's parameters to the whole batch, `theta[:] = theta[0]`).
Without `siamese`, every image gets its own parameters (one transform for the batch): the
original's non-Siamese mode, used when DC/DSA trains its network on the synthetic set.

Deviations from the original:

- Randomness: parameters come from an explicit `torch.Generator` on the CPU and are kept in a
  `Draw` object, instead of re-seeding the global torch RNG with a time-based seed before every draw
  (`set_seed_DiffAug`); the two batches share the draw object, not a seed. A Siamese draw has one
  parameter set, drawn for a batch of one (the original draws a full batch and keeps the first).
- `align_corners=False` is passed explicitly to affine_grid and grid_sample (the original passes
  nothing, which is False since torch 1.3).
- Only the single-transform mode (`aug_mode 'S'`, the original's setting) is implemented, not 'M'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from kdprune.distill import DSA_STRATEGY

DEFAULT_STRATEGY = DSA_STRATEGY
TRANSFORMS = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass(frozen=True)
class DSAParams:
    """The ranges of the transforms (the original's ParamDiffAug)."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0  # degrees
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5  # side of the cut square, as a fraction of the image side
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


@dataclass
class Draw:
    """One random draw: the transform and its parameters, one row per image or a single row that
    every image shares (Siamese). CPU tensors; `apply` moves them to the images' device."""

    transform: str
    values: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def shared(self) -> bool:
        return all(len(v) == 1 for v in self.values.values())


def parse_strategy(strategy: str | None) -> list[str]:
    """The transforms a strategy names; 'none', 'None', '' or None: no augmentation."""
    if strategy is None or strategy in ("", "none", "None"):
        return []
    names = strategy.split("_")
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"DSA strategy {strategy!r}: unknown transforms {unknown}; allowed: {', '.join(TRANSFORMS)}")
    return names


def draw(strategy: str, batch: int, height: int, width: int, generator: torch.Generator, params: DSAParams = DSAParams()) -> Draw | None:
    """Draw one transform of `strategy` and its parameters for `batch` images of height x width
    (batch 1 for a Siamese draw shared by several batches). None when the strategy is empty."""
    names = parse_strategy(strategy)
    if not names:
        return None
    name = names[int(torch.randint(0, len(names), (1,), generator=generator))]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator) * (high - low) + low

    def integers(low: int, high: int) -> torch.Tensor:  # high exclusive
        return torch.randint(low, high, (batch,), generator=generator)

    if name == "color":
        values = {"brightness": uniform(0, 1), "saturation": uniform(0, 1), "contrast": uniform(0, 1)}
    elif name == "crop":
        shift_h, shift_w = int(height * params.ratio_crop_pad + 0.5), int(width * params.ratio_crop_pad + 0.5)
        values = {"shift_h": integers(-shift_h, shift_h + 1), "shift_w": integers(-shift_w, shift_w + 1)}
    elif name == "cutout":
        side_h, side_w = _cutout_sides(height, width, params)
        values = {"centre_h": integers(0, height + 1 - side_h % 2), "centre_w": integers(0, width + 1 - side_w % 2)}
    elif name == "flip":
        values = {"flip": torch.rand(batch, generator=generator) < params.prob_flip}
    elif name == "scale":
        r = params.ratio_scale
        values = {"scale_x": uniform(1 / r, r), "scale_y": uniform(1 / r, r)}
    else:  # rotate
        values = {"angle": (torch.rand(batch, generator=generator) - 0.5) * 2 * params.ratio_rotate / 180 * math.pi}
    return Draw(name, values)


def _cutout_sides(height: int, width: int, params: DSAParams) -> tuple[int, int]:
    return int(height * params.ratio_cutout + 0.5), int(width * params.ratio_cutout + 0.5)


def apply(x: torch.Tensor, d: Draw | None, params: DSAParams = DSAParams()) -> torch.Tensor:
    """The images `x` (N x C x H x W) under the draw `d` (None: unchanged)."""
    if d is None:
        return x
    n = x.shape[0]
    v = {}
    for key, value in d.values.items():
        if len(value) not in (1, n):
            raise ValueError(f"DSA draw of {len(value)} images applied to a batch of {n}")
        v[key] = value.to(x.device).expand(n)
    if d.transform == "color":
        x = x + (v["brightness"].view(-1, 1, 1, 1).to(x.dtype) - 0.5) * params.brightness
        channel_mean = x.mean(dim=1, keepdim=True)
        x = (x - channel_mean) * (v["saturation"].view(-1, 1, 1, 1).to(x.dtype) * params.saturation) + channel_mean
        image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - image_mean) * (v["contrast"].view(-1, 1, 1, 1).to(x.dtype) + params.contrast) + image_mean
    elif d.transform == "crop":
        x = _shift(x, v["shift_h"], v["shift_w"])
    elif d.transform == "cutout":
        x = _cutout(x, v["centre_h"], v["centre_w"], params)
    elif d.transform == "flip":
        x = torch.where(v["flip"].view(-1, 1, 1, 1), x.flip(3), x)
    elif d.transform in ("scale", "rotate"):
        zeros = torch.zeros(n, device=x.device)
        if d.transform == "scale":
            sx, sy = v["scale_x"].float(), v["scale_y"].float()
            theta = torch.stack([torch.stack([sx, zeros, zeros], 1), torch.stack([zeros, sy, zeros], 1)], 1)
        else:
            a = v["angle"].float()
            theta = torch.stack([torch.stack([a.cos(), -a.sin(), zeros], 1), torch.stack([a.sin(), a.cos(), zeros], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False)
    else:
        raise ValueError(f"unknown DSA transform {d.transform!r}")
    return x.contiguous()


def with_draw(d: Draw | None, params: DSAParams = DSAParams()) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> x under the draw `d`: the same transform for every batch it is applied to (DSA's Siamese
    use: the real and the synthetic batch of one matching step, and the causal-effect filter)."""
    return lambda x: apply(x, d, params)


def _shift(x: torch.Tensor, shift_h: torch.Tensor, shift_w: torch.Tensor) -> torch.Tensor:
    """Translate every image by whole pixels: pad one zero pixel around, then read each output pixel
    at (row + shift + 1, col + shift + 1), clamped to the padded frame (so zeros come in)."""
    n, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device).view(1, h) + shift_h.view(n, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, w) + shift_w.view(n, 1) + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # N x (H + 2) x (W + 2) x C
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, centre_h: torch.Tensor, centre_w: torch.Tensor, params: DSAParams) -> torch.Tensor:
    """Zero the pixels [centre - side // 2, centre - side // 2 + side) in both directions, within the
    image (the original clamps the square's indices to the image, which zeroes the same pixels)."""
    n, _, h, w = x.shape
    side_h, side_w = _cutout_sides(h, w, params)
    top, left = (centre_h - side_h // 2).view(n, 1), (centre_w - side_w // 2).view(n, 1)
    r, c = torch.arange(h, device=x.device).view(1, h), torch.arange(w, device=x.device).view(1, w)
    in_rows, in_cols = (r >= top) & (r < top + side_h), (c >= left) & (c < left + side_w)
    keep = ~(in_rows.view(n, h, 1) & in_cols.view(n, 1, w))
    return x * keep.unsqueeze(1).to(x.dtype)


def diff_augment(x: torch.Tensor, strategy: str, generator: torch.Generator, params: DSAParams = DSAParams(), siamese: bool = False) -> torch.Tensor:
    """Draw and apply in one step: one parameter set for all of `x` when `siamese`, else one per image."""
    d = draw(strategy, 1 if siamese else x.shape[0], x.shape[2], x.shape[3], generator, params)
    return apply(x, d, params)
