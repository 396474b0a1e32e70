"""BiLP's static ("preemptive") criterion (Xu et al., ECCV 2024, "Distill Gold from Massive Ores"):
the training loss of each real sample under a classifier trained on the full real data, early in
training ("LossInit") or at convergence ("LossConverge"), averaged over a few runs. Higher = a
higher loss (the package's convention: higher = harder). BiLP drops, per class, a ratio of the
samples with the LARGEST loss (its `LossConverge_large`, `LossInit_large`: the selection rule
`easiest` here), or the smallest (`hardest`), or at random (the `random` score, drawn anew per seed).

One score for both: per-sample cross-entropy (float64, from fp32 logits) of the un-augmented
training images, the model in eval mode, after `epoch` epochs of each of `runs` runs of `arch` on
the whole training set with the `recipe` (kdprune.pruning.runs: run k seeded seed * 1000 + k),
averaged over the runs. LossInit: `epoch: 5`; LossConverge: no `epoch` (the whole recipe).

Choices (the paper and the released code, silicx/GoldFromOres-BiLP, give neither the classifier nor
its training nor the number of runs; the repository ships only the resulting score files,
`drop_utils/resource/<dataset>_{LossInit,LossConverge}.json`): all are settings (config
`scores.<method>`): `arch` (ConvNet, the distillation's own network, is the natural one), `recipe`,
`runs`, `epoch`. The released files themselves can be read with the `imported` score
(kdprune.pruning.imported)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kdprune.pruning.runs import as_device, score_runs
from kdprune.train.accel import Accel
from kdprune.train.loop import split_logits


def train_loss_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    total = torch.zeros(len(data.y_train), dtype=torch.float64)
    for model, _ in score_runs(data, settings, seed, device, log, "train_loss", accel):
        logits, labels = split_logits(model, data, "train", as_device(device))
        total += F.cross_entropy(logits.double(), labels, reduction="none")
    return (total / int(settings["runs"])).numpy()
