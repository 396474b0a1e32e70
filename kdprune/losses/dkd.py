"""Decoupled Knowledge Distillation (Zhao et al., CVPR 2022), as mdistiller computes it
(megvii-research/mdistiller, `mdistiller/distillers/DKD.py`, defaults in `mdistiller/engine/cfg.py`).

With p = softmax(z / T) of teacher and student, and y the label:
- TCKD, the target-class term: KL between the binary distributions [p[y], 1 - p[y]] of teacher and
  student, times T^2;
- NCKD, the non-target term: KL between the distributions over the other classes, each a softmax
  of z / T with the target logit pushed down by 1000 (mdistiller's mask: exp(-1000) is 0 in
  float32, so this is the softmax renormalised over the non-target classes), times T^2;
- both summed over classes and averaged over the batch; the DKD term is alpha * TCKD + beta * NCKD,
  weighted by min(epoch / warmup, 1) with epochs counted from 1 (mdistiller's trainer), and the
  loss is ce_weight * CE + that. Defaults are mdistiller's CIFAR-100 ones: ce_weight 1, alpha 1,
  beta 8, T 4, warm-up 20 epochs; its per-pair configs set beta 2 (resnet56 -> resnet20,
  resnet110 -> resnet32) or 6 (wrn_40_2 -> wrn_16_2, vgg13 -> vgg8), a grid parameter here.

Hinton's KD term decomposes as KD = TCKD + (1 - p_t[y]) * NCKD (the paper's eq. 3; tested).
With label revision (`revise` = eta > 0, kdprune.losses.revision) the teacher's distribution is
revised first: TCKD's binary target is [p~[y], 1 - p~[y]], NCKD's the revised non-target part
renormalised, which is the teacher's own when p_t is taken at T (revision scales it uniformly).

The warm-up factor is the run's state, not a grid parameter: the training loop calls
`start_epoch(epoch, device)` before each epoch, which writes it into a device tensor in place, so a
captured CUDA graph reads the new value on replay. Only the teacher's logits are read, so the
teacher view table serves DKD as it serves KD."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kdprune.losses.kd import weighted_terms
from kdprune.losses.revision import revised_teacher

MASK = 1000.0  # mdistiller's push-down of the target logit in NCKD


def dkd_terms(student_logits, teacher_logits, targets, temperature: float, teacher_probs=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample TCKD and NCKD [B], each times T^2 (mdistiller's dkd_loss before its batch mean).
    `teacher_probs`: a target distribution in place of the teacher's softmax at T (label
    revision); its non-target part, renormalised, is NCKD's target."""
    gt = F.one_hot(targets, student_logits.shape[1]).to(student_logits.dtype)
    p_student = F.softmax(student_logits / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=1) if teacher_probs is None else teacher_probs
    b_student = _binary(p_student, gt)
    b_teacher = _binary(p_teacher, gt)
    tckd = F.kl_div(torch.log(b_student), b_teacher, reduction="none").sum(1)
    log_q_student = F.log_softmax(student_logits / temperature - MASK * gt, dim=1)
    if teacher_probs is None:
        q_teacher = F.softmax(teacher_logits / temperature - MASK * gt, dim=1)
    else:
        others = teacher_probs * (1 - gt)
        q_teacher = others / others.sum(1, keepdim=True)
    nckd = F.kl_div(log_q_student, q_teacher, reduction="none").sum(1)
    return tckd * temperature**2, nckd * temperature**2


def _binary(p: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """[p[y], 1 - p[y]] per row, as mdistiller's cat_mask (the target's and the others' sums)."""
    return torch.stack([(p * gt).sum(1), (p * (1 - gt)).sum(1)], dim=1)


@dataclass(frozen=True)
class DKD:
    """ce_weight * CE + min(epoch / warmup, 1) * (alpha * TCKD + beta * NCKD)."""

    ce_weight: float = 1.0
    alpha: float = 1.0
    beta: float = 8.0
    temperature: float = 4.0
    warmup: float = 20.0
    # Label Revision (kdprune.losses.revision; P3): eta, 0 = off, and its two named options
    revise: float = 0.0
    revise_t1: bool = False
    revise_wrong_only: bool = False
    # P3's data selection: the share of a run's samples the teacher supervises, highest ds_influence
    # first (the others: `ce` alone). The runner and the training step apply it, not this class.
    supervise: float = 1.0
    needs_teacher = True

    def start_epoch(self, epoch: int, device: torch.device) -> None:
        """Before epoch `epoch` (from 0): its warm-up factor min((epoch + 1) / warmup, 1), in place."""
        factor = min((epoch + 1) / self.warmup, 1.0) if self.warmup > 0 else 1.0
        warm = self.__dict__.get("_warm")
        if warm is None or warm.device != torch.device(device):
            object.__setattr__(self, "_warm", torch.full((), factor, device=device))
        else:
            warm.fill_(factor)

    def _factor(self, like: torch.Tensor) -> torch.Tensor | float:
        warm = self.__dict__.get("_warm")
        return 1.0 if warm is None else warm.to(like.dtype)  # outside a training loop: warmed up

    def __call__(self, logits, targets, teacher_logits=None, sample_weight=None) -> dict[str, torch.Tensor]:
        if sample_weight is not None:
            return weighted_terms(self.per_sample(logits, targets, teacher_logits), sample_weight)
        return {name: values.mean() for name, values in self.per_sample(logits, targets, teacher_logits).items()}

    def per_sample(self, logits, targets, teacher_logits=None) -> dict[str, torch.Tensor]:
        revised = None
        if self.revise:
            revised = revised_teacher(teacher_logits, targets, self.temperature, self.revise, self.revise_t1, self.revise_wrong_only)
        tckd, nckd = dkd_terms(logits, teacher_logits, targets, self.temperature, revised)
        return {
            "ce": self.ce_weight * F.cross_entropy(logits, targets, reduction="none"),
            "dkd": self._factor(logits) * (self.alpha * tckd + self.beta * nckd),
        }
