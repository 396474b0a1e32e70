"""Teacher and student on the student's own kept subset, after training (P2-C5, MDSLR's motivation
analysis: hard subsets widen the teacher-student gap). On the clean (un-augmented) training images
of the subset: each model's accuracy, the gap teacher - student, and how often their top-1
predictions agree. The teacher's logits come from its forward pass or, exactly the same, from its
view table's clean view (crop offset = padding on both axes, no flip)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from kdprune.train.accel import Accel
from kdprune.train.loop import split_logits


def clean_view_logits(views: torch.Tensor, augmentation) -> torch.Tensor:
    """The un-augmented image's logits from a view table [n, S, S, F, classes]: the crop at offset
    `padding` on both axes is the image itself, flip 0 is unmirrored."""
    p = augmentation.padding
    return views[:, p, p, 0].float().cpu()


def kept_subset_agreement(
    student: nn.Module,
    data,
    subset: np.ndarray,
    device: torch.device,
    teacher: nn.Module | None = None,
    views: torch.Tensor | None = None,
    accel: Accel = Accel(),
    batch_size: int = 1024,
    supervised: np.ndarray | None = None,
) -> dict:
    """{student_acc_kept, teacher_acc_kept, teacher_wrong_kept (1 - teacher_acc_kept), ts_gap
    (teacher - student), agreement_kept} on the kept training images (accuracies as fractions).
    Needs the teacher or its view table. `supervised` (P3's data selection: the kept samples the
    teacher supervises) adds supervised_share (their share of the kept samples) and wrong_supervised
    (the share of the teacher's wrong kept samples among them: what data selection leaves to the
    teacher of the samples label revision would change; by chance it equals supervised_share)."""
    if teacher is None and views is None:
        raise ValueError("kept_subset_agreement needs the teacher or its view table")
    idx = torch.as_tensor(np.asarray(subset), dtype=torch.int64)
    s_logits, y = split_logits(student, data, "train", device, batch_size, accel)
    t_logits = (
        clean_view_logits(views, data.augmentation) if views is not None else split_logits(teacher, data, "train", device, batch_size, accel)[0]
    )
    s_pred, t_pred, y = s_logits[idx].argmax(1), t_logits[idx].argmax(1), y[idx]
    student_acc, teacher_acc = (s_pred == y).float().mean().item(), (t_pred == y).float().mean().item()
    out = {
        "student_acc_kept": student_acc,
        "teacher_acc_kept": teacher_acc,
        "teacher_wrong_kept": 1.0 - teacher_acc,
        "ts_gap": teacher_acc - student_acc,
        "agreement_kept": (s_pred == t_pred).float().mean().item(),
    }
    if supervised is not None:
        chosen = torch.as_tensor(np.isin(np.asarray(subset), np.asarray(supervised)))
        wrong = (t_pred != y).cpu()
        out["supervised_share"] = chosen.float().mean().item()
        out["wrong_supervised"] = (chosen & wrong).sum().item() / wrong.sum().item() if wrong.any() else float("nan")
    return out
