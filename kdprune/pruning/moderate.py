"""Moderate coreset (Xia et al., ICLR 2023, "Moderate Coreset: A Universal Method of Data Selection
for Real-world Data-efficient Deep Learning"). Embed every training sample with the penultimate
layer of a trained network (model.features: eval mode, un-augmented normalised images), take per
class the coordinate-wise median of the embeddings, and score each sample by the Euclidean
distance of its embedding to its class's median. The method keeps the samples whose distance is
closest to the median distance ("moderate" samples): that is the `medium` selection rule centred
on the quantile 0.5, so the config block of this method fixes `rule: medium` (and
`selection.center` stays 0.5). With `selection.class_balanced: true` the band is taken per class;
the original code takes one band over the whole training set (set class_balanced false for that).
Higher distance = further from the class prototype (harder).

Choices (config `scores.moderate`): `arch`, `recipe` (the feature extractor is trained on the full
training set with this schedule; the paper uses a network trained on the full data), optional
`epoch` (stop early on that schedule; default: all epochs; 0: the untrained network's features),
optional `runs` (default 1: the
paper uses one extractor; with more, the distances of independently trained extractors, seeds
`seed * 1000 + k`, are averaged), `rule: medium`."""

from __future__ import annotations

import numpy as np
import torch

from kdprune.pruning.runs import as_device, score_runs
from kdprune.train.accel import Accel
from kdprune.train.loop import Recipe


def distances_to_class_median(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of `features` to the coordinate-wise median of the rows of
    its class (float64)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.empty(len(features), dtype=np.float64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        median = np.median(features[members], axis=0)
        out[members] = np.linalg.norm(features[members] - median, axis=1)
    return out


@torch.no_grad()
def penultimate_features(model: torch.nn.Module, data, device, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """model.features() of every training sample (eval mode, un-augmented, standardised), in
    order, with the labels."""
    model.eval()
    feats, labels = [], []
    for x, y in data.eval_batches("train", batch_size, device):
        feats.append(model.features(x).double().cpu())
        labels.append(y.cpu())
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def moderate_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    batch_size = Recipe.from_dict(settings["recipe"]).eval_batch_size
    distances = [
        distances_to_class_median(*penultimate_features(model, data, as_device(device), batch_size))
        for model, _ in score_runs(data, settings, seed, device, log, "moderate", accel)
    ]
    return np.mean(distances, axis=0)
