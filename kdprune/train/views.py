"""The teacher's logits for every training view, computed once per teacher and looked up in every
KD step of every student that uses the teacher.

The teacher is frozen (eval mode) and the training augmentation is pad-p crop + optional flip, so an
image has exactly (2p + 1)^2 x 2 views (81 x 2 on CIFAR). A student step then gathers
`views[idx, top, left, flip]` instead of running the teacher: exact, because it is the value the
teacher's forward returns for that very view (computed with the same precision mode). It pays when
one teacher serves many students: a CIFAR grid trains tens of students per teacher for hundreds of
epochs, against 162 forward passes per image, done once in large inference batches. Logits are
stored before the temperature, so one file serves every T.

Size: n_train x views x classes x 2 bytes in bf16 (CIFAR-10: 162 MB, CIFAR-100: 1.6 GB), fp32 twice.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from kdprune.data.augment import crop_flip
from kdprune.files import save_torch
from kdprune.train.accel import Accel


def view_grid(padding: int, hflip: bool) -> tuple[int, int]:
    """(offsets per axis, flips): the shape of the view axes of the table."""
    return 2 * padding + 1, 2 if hflip else 1


@torch.no_grad()
def compute_view_logits(teacher: nn.Module, data, device: torch.device, accel: Accel = Accel(), batch_size: int = 2048) -> torch.Tensor:
    """Logits [n_train, S, S, F, classes] of every (image, top, left, flip) view, in the dtype the
    teacher's forward returns under `accel` (bf16 under bf16 autocast), on the CPU."""
    teacher = accel.prepare(teacher, device).eval()
    offsets, flips = view_grid(data.crop_padding, data.hflip)
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
                        data.crop_padding,
                    )
                    with accel.autocast(device):
                        logits = teacher(accel.images(normalize(view)))
                    if table is None:
                        table = torch.empty((n, offsets, offsets, flips, logits.shape[1]), dtype=logits.dtype)
                    table[start : start + b, top, left, flip] = logits.cpu()
    return table


def save_view_logits(path: Path, table: torch.Tensor, teacher: nn.Module, accel: Accel, teacher_hash: str) -> None:
    save_torch(
        path,
        {"logits": table, "accel": accel.as_dict(), "teacher_hash": teacher_hash, "teacher_params": sum(p.numel() for p in teacher.parameters())},
    )


def load_view_logits(path: Path, device: torch.device) -> tuple[torch.Tensor, dict]:
    """(table on `device`, the rest of the file: accel, teacher_hash, teacher_params)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state.pop("logits").to(device), state
