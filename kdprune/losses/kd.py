"""The classic objectives: cross-entropy and Hinton's KD. Each returns its loss terms by name (mdistiller's
convention): the total is their sum, and the names become the columns of the epoch log.

Per-sample form (dynamic data pruning, kdprune.train.infobatch): `per_sample(...)` gives every term
as a [B] vector whose batch mean is the term `__call__` returns, and `__call__(...,
sample_weight=w)` returns the weighted batch means mean_i(w_i * term_i): divided by the batch size,
not by the sum of the weights, as InfoBatch rescales (`weighted_terms`). `sample_weight=None` is the
plain batch mean, computed exactly as without the argument."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from kdprune.losses.revision import revised_teacher


def kd_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, per_sample: bool = False) -> torch.Tensor:
    """Hinton's KD term as mdistiller computes it: T^2 * KL(p_t^T || p_s^T), summed over classes and
    averaged over the batch (`per_sample`: one value per row, not averaged)."""
    return kd_divergence_to(student_logits, F.softmax(teacher_logits / temperature, dim=1), temperature, per_sample)


def kd_divergence_to(student_logits: torch.Tensor, target: torch.Tensor, temperature: float, per_sample: bool = False) -> torch.Tensor:
    """T^2 * KL(target || p_s^T) for a target distribution (the teacher's, or a revised one)."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    rows = F.kl_div(log_p_student, target, reduction="none").sum(1)
    return (rows if per_sample else rows.mean()) * temperature**2


def weighted_terms(per_sample: dict[str, torch.Tensor], sample_weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample terms [B] -> their weighted batch means mean_i(w_i * term_i)."""
    return {name: (values * sample_weight).mean() for name, values in per_sample.items()}


def reshape_logits(teacher_logits: torch.Tensor, targets: torch.Tensor, class_scale: torch.Tensor) -> torch.Tensor:
    """MDSLR's logit reshaping (chenyd7/MDSLR, helper/loops.py, lines 108-113): z' = z / std(z) * k_y,
    std unbiased over the sample's classes with no mean subtracted from z, k_y = `class_scale` at the
    sample's label (teacher_ce's class_logit_std)."""
    scale = class_scale.to(device=teacher_logits.device, dtype=teacher_logits.dtype)[targets]
    return teacher_logits / teacher_logits.std(dim=1, keepdim=True) * scale.unsqueeze(1)


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
    """(1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T).

    `reshape` (MDSLR; off by default): the teacher's logits are reshaped before the temperature,
    z' = z / std(z) * k_y (reshape_logits), in the KD term only. k_y is a run's data, not a grid
    parameter: the runner attaches it with `with_class_scale(k)` (kdprune.jobs.runners.run_seeds,
    from the teacher_ce score file). Applied here, to the raw teacher logits, the reshaping is the
    same whether they come from the teacher or from its view table (which stores raw logits).
    `reshape` is a grid parameter (`loss: {kd: {reshape: [0, 1]}}`, folder key `R1`); a run with
    it off carries no trace of it (schema `x-omit`), so KD runs from before keep their folders and
    hashes; docs/losses.md."""

    alpha: float = 0.9
    temperature: float = 4.0
    reshape: bool = False
    # Label Revision (kdprune.losses.revision; P3): eta, 0 = off, and its two named options
    revise: float = 0.0
    revise_t1: bool = False
    revise_wrong_only: bool = False
    # P3's data selection: the share of a run's samples the teacher supervises, highest ds_influence
    # first (the others: `ce` alone). The runner and the training step apply it, not this class.
    supervise: float = 1.0
    # both terms times `scale`: P3's lambda1 = scale (1 - alpha) on CE, lambda2 = scale alpha on KD
    scale: float = 1.0
    needs_teacher = True
    class_scale: ClassVar[torch.Tensor | None] = None  # k_y [classes]; an instance's own via with_class_scale

    def with_class_scale(self, class_scale) -> HintonKD:
        """A copy of this loss that reshapes with k_y = `class_scale` (one value per class)."""
        out = dataclasses.replace(self)
        object.__setattr__(out, "class_scale", torch.as_tensor(class_scale, dtype=torch.float32))
        return out

    def _teacher(self, targets, teacher_logits):
        """The teacher's logits as the KD term reads them: reshaped when `reshape` is on."""
        if not self.reshape:
            return teacher_logits
        if self.class_scale is None:
            raise ValueError("KD with reshape needs the teacher's per-class logit std k_y: attach it with with_class_scale")
        return reshape_logits(teacher_logits, targets, self.class_scale)

    def _kd(self, logits, targets, teacher_logits, per_sample: bool) -> torch.Tensor:
        teacher_logits = self._teacher(targets, teacher_logits)
        if not self.revise:
            return kd_divergence(logits, teacher_logits, self.temperature, per_sample)
        target = revised_teacher(teacher_logits, targets, self.temperature, self.revise, self.revise_t1, self.revise_wrong_only)
        return kd_divergence_to(logits, target, self.temperature, per_sample)

    def __call__(self, logits, targets, teacher_logits=None, sample_weight=None) -> dict[str, torch.Tensor]:
        if sample_weight is not None:
            return weighted_terms(self.per_sample(logits, targets, teacher_logits), sample_weight)
        return {
            "ce": self.scale * (1.0 - self.alpha) * F.cross_entropy(logits, targets),
            "kd": self.scale * self.alpha * self._kd(logits, targets, teacher_logits, per_sample=False),
        }

    def per_sample(self, logits, targets, teacher_logits=None) -> dict[str, torch.Tensor]:
        # The same two terms as __call__, one value per sample (keep the two in step).
        return {
            "ce": self.scale * (1.0 - self.alpha) * F.cross_entropy(logits, targets, reduction="none"),
            "kd": self.scale * self.alpha * self._kd(logits, targets, teacher_logits, per_sample=True),
        }
