"""EL2N (Paul et al., 2021): the L2 norm of the error vector softmax(f(x)) - onehot(y), computed
at an early epoch of training and averaged over K independent runs (different seeds).

Choices (config `scores.el2n`): `arch`, `runs` (K), `epoch` (when to score); each run follows the
full-length schedule of the `score` recipe and stops at `epoch`, as in the paper's early snapshot;
`epoch: 0` scores the freshly initialised models (kdprune.pruning.runs)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kdprune.pruning.runs import as_device, score_runs
from kdprune.train.accel import Accel
from kdprune.train.loop import split_logits


def el2n_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (F.softmax(logits, dim=1) - onehot).norm(dim=1)


def el2n_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    total = torch.zeros(len(data.y_train), dtype=torch.float64)
    for model, _ in score_runs(data, settings, seed, device, log, "el2n", accel):
        logits, labels = split_logits(model, data, "train", as_device(device))
        total += el2n_from_logits(logits, labels).double()
    return (total / settings["runs"]).numpy()
