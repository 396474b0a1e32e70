"""The teacher's logits for every training view, computed once per teacher and looked up in every
KD step of every student that uses the teacher.

The teacher is frozen (eval mode) and the training augmentation (the dataset's `augmentation`,
kdprune.data.Augmentation) is a pad-p crop + optional flip, so an image has exactly
(2p + 1)^2 x flips views: 81 x 2 on CIFAR, 3 x 3 on digits (no flips), 1 on SVHN (no crop, no flip).
A student step then gathers `views[idx, top, left, flip]` instead of running the teacher: exact,
because it is the value the teacher's forward returns for that very view (cropped from the same
padding mode, computed with the same precision mode). It pays when one teacher serves many students:
a CIFAR grid trains tens of students per teacher for hundreds of epochs, against 162 forward passes
per image, done once in large inference batches. Logits are stored before the temperature, so one
file serves every T.

Size: n_train x views x classes x 2 bytes in bf16 (CIFAR-10: 162 MB, CIFAR-100: 1.6 GB, SVHN:
1.5 MB), fp32 twice.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from kdprune.data import Augmentation
from kdprune.data.augment import crop_flip
from kdprune.files import load_torch, save_torch
from kdprune.train.accel import Accel

# Images per inference batch. A GPU wants large batches; on the CPU a batch of 2048 32x32 images
# spills every activation out of the caches: resnet20 ran at 3.5 ms an image there against
# 1.1-1.3 ms at 64-256 (one core, 2026-12-07): the `subset` table took 26 min instead of 35.
VIEW_BATCH = {"cuda": 2048, "cpu": 256}


@torch.no_grad()
def compute_view_logits(teacher: nn.Module, data, device: torch.device, accel: Accel = Accel(), batch_size: int | None = None) -> torch.Tensor:
    """Logits [n_train, S, S, F, classes] of every (image, top, left, flip) view, in the dtype the
    teacher's forward returns under `accel` (bf16 under bf16 autocast), on the CPU."""
    batch_size = batch_size or VIEW_BATCH.get(device.type, VIEW_BATCH["cpu"])
    teacher = accel.prepare(teacher, device).eval()
    augmentation = data.augmentation
    offsets, flips = augmentation.view_grid
    n = len(data.y_train)
    normalize = data.normalizer(device)
    table = None
    for start in range(0, n, batch_size):
        x = data.x_train[start : start + batch_size].to(device)
        b = x.shape[0]
        for top in range(offsets):
            for left in range(offsets):
                for flip in range(flips):
                    view = crop_flip(
                        x,
                        torch.full((b,), top, device=device),
                        torch.full((b,), left, device=device),
                        torch.full((b,), bool(flip), device=device),
                        augmentation,
                    )
                    with accel.autocast(device):
                        logits = teacher(accel.images(normalize(view)))
                    if table is None:
                        table = torch.empty((n, offsets, offsets, flips, logits.shape[1]), dtype=logits.dtype)
                    table[start : start + b, top, left, flip] = logits.cpu()
    return table


def save_view_logits(path: Path, table: torch.Tensor, teacher: nn.Module, accel: Accel, teacher_hash: str, augmentation: Augmentation) -> None:
    save_torch(
        path,
        {
            "logits": table,
            "augmentation": asdict(augmentation),
            "accel": accel.as_dict(),
            "teacher_hash": teacher_hash,
            "teacher_params": sum(p.numel() for p in teacher.parameters()),
        },
    )


def load_view_logits(path: Path, device: torch.device, augmentation: Augmentation) -> tuple[torch.Tensor, dict]:
    """(table on `device`, the rest of the file: augmentation, accel, teacher_hash, teacher_params).
    A table of other views (padding mode, crop, flip) than the student draws would be silently wrong."""
    state = load_torch(path)
    if state.get("augmentation") != asdict(augmentation):
        raise ValueError(f"teacher views {path} hold the views of augmentation {state.get('augmentation')}, the student draws {asdict(augmentation)}")
    return state.pop("logits").to(device), state
