"""Scores -> kept indices: a pure function of (scores, labels, keep fraction, rule, settings, seed).

Rules (higher score = harder): `hardest` keeps the top scores, `easiest` the bottom ones,
`medium` a window of the sorted scores centred on the quantile `center` (0.5 = around the median).
Class-balanced by default: every class keeps round(keep * its size) samples (at least one), so
pruning does not change the class prior. Ties are broken by sample index (stable sort).

A rule is `rule(order, sorted_scores, k, settings, rng) -> kept indices`: `order` holds one group's
sample indices sorted from easiest to hardest, `settings` the `selection:` block of the config."""
from __future__ import annotations

import numpy as np

from kdprune.registry import Registry

RULES: Registry = Registry("selection rule")


@RULES.register("hardest")
def _hardest(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    return order[len(order) - k :]


@RULES.register("easiest")
def _easiest(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    return order[:k]


@RULES.register("medium")
def _medium(order: np.ndarray, sorted_scores: np.ndarray, k: int, settings: dict, rng) -> np.ndarray:
    start = int(round(settings.get("center", 0.5) * len(order) - k / 2))
    start = min(max(start, 0), len(order) - k)
    return order[start : start + k]


def select_indices(
    scores: np.ndarray,
    labels: np.ndarray,
    keep: float,
    rule: str = "hardest",
    class_balanced: bool = True,
    seed: int = 0,
    **settings,
) -> np.ndarray:
    """Sorted indices of the kept samples. `settings`: rule parameters (e.g. center=0.5); `seed`
    drives rules that sample."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    scores, labels = np.asarray(scores), np.asarray(labels)
    pick = RULES.get(rule)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if class_balanced else [np.arange(len(scores))]
    rng = np.random.default_rng(seed)
    kept = []
    for members in groups:
        k = max(1, int(round(keep * len(members))))
        order = members[np.argsort(scores[members], kind="stable")]  # easiest ... hardest
        kept.append(pick(order, scores[order], k, settings, rng))
    return np.sort(np.concatenate(kept))
