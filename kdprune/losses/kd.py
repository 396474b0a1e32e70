"""The classic objectives: cross-entropy and Hinton's KD. Each returns its loss terms by name (mdistiller's
convention): the total is their sum, and the names become the columns of the epoch log."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def kd_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD term as mdistiller computes it: T^2 * KL(p_t^T || p_s^T), summed over classes and
    averaged over the batch."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="none").sum(1).mean() * temperature**2


@dataclass(frozen=True)
class CrossEntropy:
    needs_teacher = False

    def __call__(self, logits, targets, teacher_logits=None) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(logits, targets)}


@dataclass(frozen=True)
class HintonKD:
    """(1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T)."""

    alpha: float = 0.9
    temperature: float = 4.0
    needs_teacher = True

    def __call__(self, logits, targets, teacher_logits=None) -> dict[str, torch.Tensor]:
        return {
            "ce": (1.0 - self.alpha) * F.cross_entropy(logits, targets),
            "kd": self.alpha * kd_divergence(logits, teacher_logits, self.temperature),
        }
