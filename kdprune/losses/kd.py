"""The classic objectives: cross-entropy and Hinton's KD. Each returns its loss terms by name (mdistiller's
convention): the total is their sum, and the names become the columns of the epoch log.

Per-sample form (dynamic data pruning, kdprune.train.infobatch): `per_sample(...)` gives every term
as a [B] vector whose batch mean is the term `__call__` returns, and `__call__(...,
sample_weight=w)` returns the weighted batch means mean_i(w_i * term_i): divided by the batch size,
not by the sum of the weights, as InfoBatch rescales (`weighted_terms`). `sample_weight=None` is the
plain batch mean, computed exactly as without the argument."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def kd_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, per_sample: bool = False) -> torch.Tensor:
    """Hinton's KD term as mdistiller computes it: T^2 * KL(p_t^T || p_s^T), summed over classes and
    averaged over the batch (`per_sample`: one value per row, not averaged)."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=1)
    rows = F.kl_div(log_p_student, p_teacher, reduction="none").sum(1)
    return (rows if per_sample else rows.mean()) * temperature**2


def weighted_terms(per_sample: dict[str, torch.Tensor], sample_weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample terms [B] -> their weighted batch means mean_i(w_i * term_i)."""
    return {name: (values * sample_weight).mean() for name, values in per_sample.items()}


@dataclass(frozen=True)
class CrossEntropy:
    needs_teacher = False

    def __call__(self, logits, targets, teacher_logits=None, sample_weight=None) -> dict[str, torch.Tensor]:
        if sample_weight is not None:
            return weighted_terms(self.per_sample(logits, targets, teacher_logits), sample_weight)
        return {"ce": F.cross_entropy(logits, targets)}

    def per_sample(self, logits, targets, teacher_logits=None) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(logits, targets, reduction="none")}


@dataclass(frozen=True)
class HintonKD:
    """(1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T)."""

    alpha: float = 0.9
    temperature: float = 4.0
    needs_teacher = True

    def __call__(self, logits, targets, teacher_logits=None, sample_weight=None) -> dict[str, torch.Tensor]:
        if sample_weight is not None:
            return weighted_terms(self.per_sample(logits, targets, teacher_logits), sample_weight)
        return {
            "ce": (1.0 - self.alpha) * F.cross_entropy(logits, targets),
            "kd": self.alpha * kd_divergence(logits, teacher_logits, self.temperature),
        }

    def per_sample(self, logits, targets, teacher_logits=None) -> dict[str, torch.Tensor]:
        # The same two terms as __call__, one value per sample (keep the two in step).
        return {
            "ce": (1.0 - self.alpha) * F.cross_entropy(logits, targets, reduction="none"),
            "kd": self.alpha * kd_divergence(logits, teacher_logits, self.temperature, per_sample=True),
        }
