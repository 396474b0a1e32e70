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
averaged), `recipe`, optional `epoch` (stop early on that schedule; at least 1), `margin`:
`probability` (default: the CCS code, softmax probabilities) or `logit` (Pleiss et al.'s
definition). Other differences from the sources (docs/scores.md): the CCS code sums the margins over epochs, we average them
(the same order, since every sample has one presentation per epoch)."""

from __future__ import annotations

import numpy as np
import torch

from kdprune.pruning.runs import PresentationRecorder, score_runs
from kdprune.train.accel import Accel


def _margins(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    assigned = values.gather(1, targets.view(-1, 1)).squeeze(1)
    others = values.scatter(1, targets.view(-1, 1), float("-inf"))
    return assigned - others.max(dim=1).values


def probability_margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """softmax(logits)[y] - max over the other classes of softmax(logits), per row (float64)."""
    return _margins(torch.softmax(logits.double(), dim=1), targets)


def logit_margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits[y] - max over the other classes of the logits, per row (float64): Pleiss et al."""
    return _margins(logits.double(), targets)


# `scores.aum.margin`: the sources differ, so it is a choice (docs/scores.md)
MARGINS = {"probability": probability_margins, "logit": logit_margins}


class MarginRecorder(PresentationRecorder):
    """An `on_batch` hook for fit(): the sum of each sample's margins over its presentations."""

    recorded = (*PresentationRecorder.recorded, "total")

    def __init__(self, n_samples: int, epochs: int, margin=probability_margins):
        super().__init__(n_samples, epochs)
        self.total = np.zeros(n_samples, dtype=np.float64)
        self.margin = margin

    def __call__(self, epoch: int, sample_indices: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        np.add.at(self.total, self.mark(epoch, sample_indices), self.margin(logits.detach(), targets).cpu().numpy())

    def aum(self) -> np.ndarray:
        self.check("aum")
        return self.total / self.seen.shape[1]


def aum_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    margin = MARGINS[settings.get("margin", "probability")]  # default: the CCS code's, whose cutoff AUM serves
    runs = score_runs(data, settings, seed, device, log, "aum", accel, recorder=lambda n, epochs: MarginRecorder(n, epochs, margin))
    return -np.mean([recorder.aum() for _, recorder in runs], axis=0)
