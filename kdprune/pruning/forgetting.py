"""Forgetting events (Toneva et al., ICLR 2019, "An Empirical Study of Example Forgetting during
Deep Neural Network Learning"). During ordinary training on the whole training set, every time a
sample is presented in a minibatch we record whether the network classifies it correctly
(argmax of the logits of that very forward pass: the augmented view, training-mode BatchNorm,
weights before the step, as in the original code). A forgetting event is a transition
correct -> incorrect between two consecutive presentations of the same sample; the score is the
number of such events. Samples never classified correctly at any presentation ("never learned")
are ranked above all others: the paper treats them as forgotten infinitely often, and its code
(order_examples_by_forgetting.py) gives them n_presentations, which we follow: it is finite (as
the score files require) and above any possible count (at most n_presentations / 2). A sample
learned once and never forgotten ("unforgettable") scores 0.
Higher = harder (keep-hardest keeps the most forgotten).

Choices (config `scores.forgetting`): `arch`, `runs` (independent runs, seed `seed * 1000 + k`,
counts averaged over runs, the original sums them: same order; a never-learned sample contributes
n_presentations in that run),
`recipe` (the full schedule: every sample is presented once per epoch, so n_presentations =
epochs), optional `epoch` to stop the run early on that schedule (default: all epochs; at least 1:
with no epoch there is nothing to count)."""

from __future__ import annotations

import numpy as np
import torch

from kdprune.pruning.runs import PresentationRecorder, score_runs
from kdprune.train.accel import Accel


def forgetting_counts(history: np.ndarray) -> np.ndarray:
    """`history`: n_samples x n_presentations bool (True = correct at that presentation, in
    presentation order). Returns float64 counts of correct -> incorrect transitions; samples never
    correct get n_presentations (more than any count, as in Toneva et al.'s code)."""
    history = np.asarray(history, dtype=bool)
    if history.ndim != 2:
        raise ValueError(f"history must be n_samples x n_presentations, got shape {history.shape}")
    events = (history[:, :-1] & ~history[:, 1:]).sum(axis=1)
    never_learned = ~history.any(axis=1)
    return np.where(never_learned, history.shape[1], events).astype(np.float64)


class AccuracyRecorder(PresentationRecorder):
    """An `on_batch` hook for fit(): history[i, epoch] = whether sample i was classified correctly
    when presented in that epoch (each sample is presented exactly once per epoch)."""

    recorded = (*PresentationRecorder.recorded, "history")

    def __init__(self, n_samples: int, epochs: int):
        super().__init__(n_samples, epochs)
        self.history = np.zeros((n_samples, epochs), dtype=bool)

    def __call__(self, epoch: int, sample_indices: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.history[self.mark(epoch, sample_indices), epoch] = (logits.argmax(dim=1) == targets).cpu().numpy()

    def counts(self) -> np.ndarray:
        self.check("forgetting")
        return forgetting_counts(self.history)


def forgetting_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    runs = score_runs(data, settings, seed, device, log, "forgetting", accel, recorder=AccuracyRecorder)
    return np.mean([recorder.counts() for _, recorder in runs], axis=0)
