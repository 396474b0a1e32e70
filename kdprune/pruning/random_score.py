"""Random pruning: i.i.d. uniform scores, so any selection rule keeps a uniform random subset
(class-balanced when the selection is)."""

from __future__ import annotations

import numpy as np

from kdprune.train.accel import Accel


def random_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    return np.random.default_rng(seed).random(len(data.y_train))
