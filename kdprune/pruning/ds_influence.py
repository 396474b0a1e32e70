"""P3's Data Selection score (Lan et al., "Improve Knowledge Distillation via Label Revision and Data
Selection", 2024): which training samples the teacher should supervise. No code was released and
only the abstract and summaries could be read ("an influence-style criterion"), so the score is
defined here and every choice is a named option of `scores.<method>` (docs/scores.md):

- The model whose gradients are taken: a network of `arch` trained with cross-entropy on the full
  training set for `epoch` epochs of the `recipe` schedule (kdprune.pruning.runs, one run), the
  student's stand-in (a score is computed once per (dataset, teacher, seed), before any student).
- `signal: influence` (default): sample i's gradient of the KD loss T^2 KL(p_t^T || p_s^T) with
  respect to the model's last linear layer (weights and bias), dotted with the gradient of the
  ground-truth cross-entropy averaged over a held-out batch of `held_out` training samples (drawn
  with the score's seed; default 512). One SGD step on sample i changes the held-out loss by about
  -lr times that dot product, so a HIGHER score is a MORE HELPFUL sample, one whose teacher
  supervision lowers the held-out loss; a sample whose teacher points the wrong way scores lowest.
  In closed form (last layer z = W h + b): score_i = a_i^T G h~_i with a_i = T (p_s^T - p_t^T)(x_i),
  h~_i = [h_i, 1] and G = mean over the held-out batch of (softmax(z_j) - onehot(y_j)) h~_j^T.
- `signal: kd_loss` (the cheaper option): minus the per-sample KD loss, so the samples on which
  student and teacher already agree most score highest.
- `temperature` (default 4, KD's): the T of the KD loss.
Features, logits and teacher logits are taken in eval mode on the un-augmented images. The DS
subset (the supervised fraction of the samples, highest scores first) is static per run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kdprune.pruning.runs import as_device, score_runs
from kdprune.train.accel import Accel
from kdprune.train.loop import split_logits

SIGNALS = ("influence", "kd_loss")
HELD_OUT = 512  # `held_out` absent
TEMPERATURE = 4.0  # `temperature` absent: KD's


def influence(student_logits, features, teacher_logits, labels, held_out: torch.Tensor, temperature: float) -> torch.Tensor:
    """score_i = <d KD_i / d(W, b), mean_{j in held_out} d CE_j / d(W, b)> for a last layer z = W h + b."""
    s, t, h = student_logits.double(), teacher_logits.double(), features.double()
    h1 = torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype)], dim=1)  # the bias as a feature of 1
    a = temperature * (F.softmax(s / temperature, dim=1) - F.softmax(t / temperature, dim=1))
    error = F.softmax(s[held_out], dim=1) - F.one_hot(labels[held_out], s.shape[1]).double()
    g_val = error.T @ h1[held_out] / len(held_out)  # [classes, features + 1]
    return (a * (h1 @ g_val.T)).sum(dim=1)


def kd_loss(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    log_p = F.log_softmax(student_logits.double() / temperature, dim=1)
    q = F.softmax(teacher_logits.double() / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="none").sum(1) * temperature**2


def ds_influence_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    teacher = settings.get("teacher_model")
    if teacher is None:
        raise ValueError("score ds_influence needs a trained teacher: name it as scores.<method>.teacher (kd_teacher: each student's own)")
    signal = settings.get("signal", "influence")
    if signal not in SIGNALS:
        raise ValueError(f"scores.<method>.signal = {signal!r} is not allowed; allowed: {', '.join(SIGNALS)}")
    device = as_device(device)
    temperature = float(settings.get("temperature", TEMPERATURE))
    model, _ = next(score_runs(data, {**settings, "runs": 1}, seed, device, log, "ds_influence", accel))
    student_logits, labels = split_logits(model, data, "train", device)
    teacher_logits, _ = split_logits(teacher.to(device), data, "train", device)
    n = len(labels)
    if signal == "kd_loss":
        scores = -kd_loss(student_logits, teacher_logits, temperature)
    else:
        with torch.no_grad():  # the input of the last linear layer, in split_logits' order
            features = torch.cat([model.features(x).float().cpu() for x, _ in data.eval_batches("train", 1024, device)])
        size = min(int(settings.get("held_out", HELD_OUT)), n)
        held_out = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]
        scores = influence(student_logits, features, teacher_logits, labels, held_out, temperature)
    log(f"[score ds_influence] {signal} of {n} samples at T {temperature:g}: {int((scores > 0).sum())} above 0")
    return scores.numpy()
