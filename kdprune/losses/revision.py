"""Label Revision (LR; Lan et al., "Improve Knowledge Distillation via Label Revision and Data
Selection", 2024): the teacher's soft prediction is moved towards the one-hot label before the
student distils it,

    p~ = beta * p_t + (1 - beta) * onehot(y),   beta = eta / (p_t[max] - p_t[y] + 1),   0 < eta < 1.

Then p~[y] - p~[j] >= 1 - beta * (1 + p_t[max] - p_t[y]) = 1 - eta > 0 for every other class j:
the revised target's arg-max is always the label, and where the teacher is right beta = eta.

No code was released and only the abstract and summaries could be read, so three choices are
named options of the distiller that wraps LR (HintonKD, DKD), each a grid parameter whose default
leaves no trace in run folders or hashes (schema `x-omit`):
- `revise`: eta; 0 turns LR off (the default). The sources give no value; P3's default is 0.8.
- `revise_t1`: 0 (default): p_t is the teacher's softmax at the distillation temperature T, so the
  revised target replaces p_t^T in the KL; 1: p_t is its softmax at T = 1, revised, and used as the
  target of the student's softmax at T.
- `revise_wrong_only`: 0 (default): every sample's target is revised; 1: only where the teacher's
  arg-max is not the label (elsewhere p~ = p_t).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def revise(p_teacher: torch.Tensor, targets: torch.Tensor, eta: float, wrong_only: bool = False) -> torch.Tensor:
    """p~ = beta p_t + (1 - beta) onehot(y), beta = eta / (p_t[max] - p_t[y] + 1), per row."""
    if not 0.0 < eta < 1.0:
        raise ValueError(f"label revision needs 0 < eta < 1, got {eta}")
    p_label = p_teacher.gather(1, targets.unsqueeze(1))
    beta = eta / (p_teacher.max(dim=1, keepdim=True).values - p_label + 1.0)
    if wrong_only:
        right = p_teacher.argmax(dim=1, keepdim=True) == targets.unsqueeze(1)
        beta = torch.where(right, torch.ones_like(beta), beta)
    onehot = F.one_hot(targets, p_teacher.shape[1]).to(p_teacher.dtype)
    return beta * p_teacher + (1.0 - beta) * onehot


def revised_teacher(
    teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float, eta: float, at_t1: bool, wrong_only: bool
) -> torch.Tensor:
    """The distribution the student distils under LR: the teacher's softmax at T (or at 1 with
    `at_t1`), revised."""
    p_teacher = F.softmax(teacher_logits / (1.0 if at_t1 else temperature), dim=1)
    return revise(p_teacher, targets, eta, wrong_only)
