"""Herding (Welling, ICML 2009; as a coreset selection method, Chen et al., UAI 2010), as DeepCore
(Guo et al., DEXA 2022; PatrickZH/DeepCore, `deepcore/methods/herding.py`) runs it on CIFAR: greedy
matching of a class's mean embedding.

Embeddings: the penultimate features (`model.features`: the input of the last linear layer, which
is what DeepCore's embedding recorder stores) of every training sample, in eval mode, on the
un-augmented normalised images. The model is the trained teacher the score job reads
(`settings["teacher_model"]`, config `scores.herding.teacher`); without one, a network of `arch`
trained with `recipe` (kdprune.pruning.runs, one run), as DeepCore trains its own model first.

Per class, with mu the mean of the class's embeddings and S the sum of the i embeddings picked so
far, step i + 1 picks the unpicked sample x that minimises ||(i + 1) mu - S - x||, i.e. the one that
brings the mean of the picked embeddings closest to mu (ties: the lowest sample index). The picks
up to k do not depend on the budget, so the first k picks of the full order are the herding coreset
of size k.

Score: a class of n_c samples gives its p-th pick (p = 0, 1, ...) the score 1 - p / n_c, so the
first pick scores 1 and the last 1 / n_c. Higher = picked earlier, so the `hardest` rule with
`selection.class_balanced: true` (the project default) keeps exactly each class's first
k_c = max(1, round(keep * n_c)) picks: DeepCore's class-balanced herding (its default, `--balance
True`), whose budget is round(fraction * n_c). Without class balance, top-k of these scores takes
about the same fraction of every class (the samples with the smallest p / n_c), which is not
DeepCore's unbalanced herding over the whole set at once.

Deviations from DeepCore:

- Nearest, not farthest, by default: DeepCore's `herding` takes `torch.argmax` of the Euclidean
  distance between (i + 1) mu - S and the candidates, i.e. it picks the sample that moves the
  running mean furthest from mu. Herding as Welling and Chen et al. define it (keep the running
  mean close to the target mean) picks the nearest. The sources disagree, so it is an option:
  `scores.herding.pick: nearest` (absent: nearest) or `farthest` (DeepCore's code as written).
- The model is the KD teacher (the paper under test scores with it) instead of a network trained
  for the selection, when the config names a teacher.
- Distances in float64 (DeepCore: float32 with a 1e-12 floor before the square root, which only
  matters for ties).
- `seed` only seeds the training of the fallback network; with a teacher the score is the same for
  every seed.
"""

from __future__ import annotations

import numpy as np
import torch

from kdprune.pruning.moderate import penultimate_features
from kdprune.pruning.runs import as_device, score_runs
from kdprune.train.accel import Accel
from kdprune.train.loop import Recipe

PICKS = ("nearest", "farthest")  # `scores.herding.pick`: Welling's herding, or DeepCore's argmax


def herding_order(features, device=None, pick: str = "nearest") -> np.ndarray:
    """Row indices of `features` [n, d] in greedy herding order (see the module docstring); `pick`
    "farthest" takes DeepCore's argmax of the distance instead of the minimum."""
    if pick not in PICKS:
        raise ValueError(f"herding pick = {pick!r} is not allowed: {' or '.join(PICKS)}")
    farthest = pick == "farthest"
    device = as_device(device)
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64, device=device)
    n = len(x)
    mu = x.mean(0)
    norms = (x * x).sum(1)
    picked_sum = torch.zeros_like(mu)
    free = torch.ones(n, dtype=torch.bool, device=device)
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        target = (i + 1) * mu - picked_sum
        # ||target - x||^2 up to the constant ||target||^2; picked rows are out of the race.
        distance = norms - 2.0 * (x @ target)
        if farthest:
            p = int(torch.argmax(torch.where(free, distance, -torch.inf)))  # ties: the lowest index
        else:
            p = int(torch.argmin(torch.where(free, distance, torch.inf)))  # ties: the lowest index
        order[i] = p
        free[p] = False
        picked_sum += x[p]
    return order


def herding_scores_of(features: np.ndarray, labels: np.ndarray, device=None, pick: str = "nearest") -> np.ndarray:
    """Per class, 1 - p / n_c for the sample picked p-th (from 0) by herding over the class."""
    labels = np.asarray(labels)
    scores = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = herding_order(features[members], device, pick)
        scores[members[order]] = 1.0 - np.arange(len(members)) / len(members)
    return scores


def herding_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    device = as_device(device)
    recipe = settings.get("recipe")
    batch_size = Recipe.from_dict(recipe).eval_batch_size if recipe else Recipe(epochs=1).eval_batch_size
    teacher = settings.get("teacher_model")
    if teacher is not None:
        models = [teacher.to(device).eval()]
    else:
        if int(settings.get("runs", 1)) != 1:
            raise ValueError("herding orders the samples of one network's embeddings: runs must be 1")
        models = [model for model, _ in score_runs(data, settings, seed, device, log, "herding", accel)]
    features, labels = penultimate_features(models[0], data, device, batch_size)
    scores = herding_scores_of(features, labels, device, settings.get("pick", "nearest"))
    source = "the teacher's" if teacher is not None else f"a trained {settings.get('arch')}'s"
    log(f"[score herding] {len(scores)} samples in herding order of {source} {features.shape[1]}-d features")
    return scores
