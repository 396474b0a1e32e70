"""Measurements beside a claim's verdict that are not in the runs table: P4-C3's agreement of two
static scores (BiLP's LossInit and LossConverge), as Spearman rank correlations of their score
files, within each class (what BiLP's per-class drop uses) and over the whole training set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats


def _scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return f["scores"], f["labels"]


def rank_correlation(a: Path, b: Path) -> dict:
    """Spearman's rho of two score files of one training set: per class (mean, min, max over the
    classes) and global. Refuses files of different training labels."""
    (x, labels), (y, other) = _scores(a), _scores(b)
    if not np.array_equal(labels, other):
        raise ValueError(f"{a} and {b} score different training sets (their labels differ)")
    per_class = [stats.spearmanr(x[labels == c], y[labels == c]).statistic for c in np.unique(labels)]
    return {
        "a": Path(a).stem,
        "b": Path(b).stem,
        "within_class_mean": float(np.mean(per_class)),
        "within_class_min": float(np.min(per_class)),
        "within_class_max": float(np.max(per_class)),
        "global": float(stats.spearmanr(x, y).statistic),
        "n": int(len(labels)),
    }


def rank_correlations(paths: list[Path]) -> list[dict]:
    """One row per consecutive pair of files (a claim's `measure` lists them in pairs, per dataset)."""
    if len(paths) % 2:
        raise ValueError(f"a measure compares score files in pairs, got {len(paths)} files")
    return [rank_correlation(a, b) for a, b in zip(paths[::2], paths[1::2])]
