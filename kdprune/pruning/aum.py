"""Area under the margin (Pleiss et al., NeurIPS 2020, "Identifying Mislabeled Data using the Area
Under the Margin Ranking"), as the CCS authors compute it (Zheng et al., ICLR 2023: their
`accumulated_margin`, generate_importance_score.py). During one ordinary training run on the whole
training set, every time a sample is presented in a minibatch we take the forward pass of that very
minibatch (the augmented view, training-mode BatchNorm, weights before the step, as for forgetting)
and record its margin: the probability of the assigned class minus the largest other probability.
AUM is the mean of the margins over the presentations (one per epoch). A low (negative) margin
means the network keeps preferring another class: hard or mislabelled.

Stored NEGATED, so that a higher score = harder, as every score here: the score is -AUM.

Choices (config `scores.aum`): `arch`, `runs` (independent runs, seed `seed * 1000 + k`, AUMs
averaged), `recipe`, optional `epoch` (stop early on that schedule; at least 1). Differences from
the sources (docs/scores.md): Pleiss et al. take the margin of the logits, the CCS code that of the
softmax probabilities, which we follow; the CCS code sums the margins over epochs, we average them
(the same order, since every sample has one presentation per epoch)."""

from __future__ import annotations

import numpy as np
import torch

from kdprune.pruning.runs import PresentationRecorder, score_runs
from kdprune.train.accel import Accel


def probability_margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """softmax(logits)[y] - max over the other classes of softmax(logits), per row (float64)."""
    probs = torch.softmax(logits.double(), dim=1)
    assigned = probs.gather(1, targets.view(-1, 1)).squeeze(1)
    others = probs.scatter(1, targets.view(-1, 1), float("-inf"))
    return assigned - others.max(dim=1).values


class MarginRecorder(PresentationRecorder):
    """An `on_batch` hook for fit(): the sum of each sample's margins over its presentations."""

    def __init__(self, n_samples: int, epochs: int):
        super().__init__(n_samples, epochs)
        self.total = np.zeros(n_samples, dtype=np.float64)

    def __call__(self, epoch: int, sample_indices: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        np.add.at(self.total, self.mark(epoch, sample_indices), probability_margins(logits.detach(), targets).cpu().numpy())

    def aum(self) -> np.ndarray:
        self.check("aum")
        return self.total / self.seen.shape[1]


def aum_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    runs = score_runs(data, settings, seed, device, log, "aum", accel, recorder=MarginRecorder)
    return -np.mean([recorder.aum() for _, recorder in runs], axis=0)
