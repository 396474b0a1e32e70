"""BiLP's per-class count and tie order (rules bilp_drop_small / bilp_drop_large) against a direct
re-implementation of silicx/GoldFromOres-BiLP's drop_utils/drop.py (`drop_samples` with
`drop_ratio`, which calls `sample_indices_to_drop(..., keep_percentile_from=drop_ratio,
keep_percentile_to=1.0)`)."""

from __future__ import annotations

import numpy as np
import pytest

from kdprune.pruning import RULES
from kdprune.pruning.selection import select_indices

CLASS_SIZES = [5000, 135, 7, 1]


def drop_py_kept(utility: np.ndarray, labels: np.ndarray, drop_ratio: float, drop_order: str) -> np.ndarray:
    """drop.py's non-random branch, line for line: indices_class built by enumerating the labels,
    the utility negated for `large`, Python's stable `sorted`, the left end dropped."""
    if drop_order == "large":
        utility = -utility
    indices_class = [[] for _ in range(labels.max() + 1)]
    for i, lab in enumerate(labels):
        indices_class[lab].append(i)
    dropped = set()
    for idx_group in indices_class:
        keep_from = int(drop_ratio * len(idx_group))
        keep_to = int(1.0 * len(idx_group))
        idx_group = sorted(idx_group, key=lambda i: utility[i])
        dropped.update(idx_group[:keep_from] + idx_group[keep_to:])
    return np.array(sorted(set(range(len(labels))) - dropped))


@pytest.fixture(scope="module")
def imbalanced():
    """Shuffled labels of classes of 5000, 135, 7 and 1 samples; scores from five values (many ties)."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_SIZES)), CLASS_SIZES))
    scores = rng.integers(0, 5, len(labels)).astype(np.float64)
    return scores, labels


def test_rules_are_declared_with_the_floor_drop_count():
    for name in ("bilp_drop_small", "bilp_drop_large"):
        assert RULES.meta(name) == {"floor_drop": True}


@pytest.mark.parametrize("rule, drop_order", [("bilp_drop_small", "small"), ("bilp_drop_large", "large")])
def test_the_kept_subset_is_drop_py_s_at_every_percent(rule, drop_order, imbalanced):
    scores, labels = imbalanced
    for percent in range(1, 100):
        keep, drop_ratio = (100 - percent) / 100, percent / 100  # BiLP's command line: --drop_ratio 0.01 ... 0.99
        expected = drop_py_kept(scores, labels, drop_ratio, drop_order)
        assert np.array_equal(select_indices(scores, labels, keep, rule), expected), keep
    assert np.array_equal(select_indices(scores, labels, 1.0, rule), np.arange(len(labels)))  # drop_ratio 0


def test_keep_031_of_5000_keeps_1551_where_round_keeps_1550(imbalanced):
    scores, labels = imbalanced
    # drop_ratio 0.69: 0.69 * 5000 = 3449.9999999999995 drops 3449; 0.69 * 7 = 4.83 drops 4
    assert np.bincount(labels[drop_py_kept(scores, labels, 0.69, "large")]).tolist() == [1551, 42, 3, 1]
    for rule in ("bilp_drop_small", "bilp_drop_large"):
        kept = select_indices(scores, labels, 0.31, rule)
        assert np.bincount(labels[kept]).tolist() == [1551, 42, 3, 1]
    assert np.bincount(labels[select_indices(scores, labels, 0.31, "easiest")]).tolist() == [1550, 42, 2, 1]


def test_the_decimal_drop_ratio_not_the_float_one_minus_keep():
    """keep 0.8: BiLP's --drop_ratio 0.2 drops int(0.2 * 5000) = 1000; the float 1 - 0.8 would drop 999."""
    labels = np.zeros(5000, dtype=np.int64)
    scores = np.arange(5000, dtype=np.float64)
    assert len(select_indices(scores, labels, 0.8, "bilp_drop_small")) == 4000
    assert int((1 - 0.8) * 5000) == 999


def test_ties_drop_the_lower_index_first():
    """One class, scores [2, 1, 1, 1, 1, 0]; keep half (drop_ratio 0.5: drop 3)."""
    scores = np.array([2.0, 1, 1, 1, 1, 0])
    labels = np.zeros(6, dtype=np.int64)
    # _large sorts by -score: [0 (2), 1, 2, 3, 4 (the ones, by index), 5 (0)] and drops 0, 1, 2
    assert select_indices(scores, labels, 0.5, "bilp_drop_large").tolist() == [3, 4, 5]
    assert select_indices(scores, labels, 0.5, "easiest").tolist() == [1, 2, 5]
    # _small sorts by score: [5, 1, 2, 3, 4, 0] and drops 5, 1, 2
    assert select_indices(scores, labels, 0.5, "bilp_drop_small").tolist() == [0, 3, 4]
    for rule, order in (("bilp_drop_large", "large"), ("bilp_drop_small", "small")):
        assert select_indices(scores, labels, 0.5, rule).tolist() == drop_py_kept(scores, labels, 0.5, order).tolist()
