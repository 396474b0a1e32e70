import numpy as np
import pytest

from kdprune.pruning.selection import select_indices

LABELS = np.repeat([0, 1, 2], [10, 20, 30])
SCORES = np.arange(60, dtype=float)  # within each class, later samples are harder


def test_class_balanced_keeps_each_class_fraction():
    kept = select_indices(SCORES, LABELS, 0.3)
    assert np.bincount(LABELS[kept]).tolist() == [3, 6, 9]


def test_hardest_and_easiest():
    hard = select_indices(SCORES, LABELS, 0.3, "hardest")
    easy = select_indices(SCORES, LABELS, 0.3, "easiest")
    assert hard.tolist() == [7, 8, 9, 24, 25, 26, 27, 28, 29, 51, 52, 53, 54, 55, 56, 57, 58, 59]
    assert easy.tolist() == [0, 1, 2, 10, 11, 12, 13, 14, 15, 30, 31, 32, 33, 34, 35, 36, 37, 38]


def test_medium_window_is_centred_and_clamped():
    kept = select_indices(SCORES, LABELS, 0.2, "medium", center=0.5)
    assert kept[LABELS[kept] == 1].tolist() == [18, 19, 20, 21]  # class 1 = 10..29; middle 4
    top = select_indices(SCORES, LABELS, 0.2, "medium", center=1.0)
    assert top.tolist() == select_indices(SCORES, LABELS, 0.2, "hardest").tolist()


def test_global_selection_ignores_classes():
    kept = select_indices(SCORES, LABELS, 0.25, "hardest", class_balanced=False)
    assert kept.tolist() == list(range(45, 60))


def test_deterministic_with_ties_and_at_least_one_per_class():
    scores = np.zeros(60)
    a = select_indices(scores, LABELS, 0.01)
    assert a.tolist() == select_indices(scores, LABELS, 0.01).tolist()
    assert np.bincount(LABELS[a]).tolist() == [1, 1, 1]
    assert len(select_indices(scores, LABELS, 1.0)) == 60


@pytest.mark.parametrize("keep", [0.0, -0.1, 1.5])
def test_keep_out_of_range(keep):
    with pytest.raises(ValueError, match=r"keep must be in \(0, 1\]"):
        select_indices(SCORES, LABELS, keep)


# -- mdslr: MDSLR's medium window (chenyd7/MDSLR, selected_samples/cifar100/medium/generate_index.py) --


def ranked(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of classes of `sizes` in shuffled order, scores, and each sample's position among its
    class's ascending scores (scores are distinct)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    scores = rng.permutation(len(labels)).astype(float)
    rank = np.zeros(len(labels), dtype=int)
    for c in range(len(sizes)):
        members = np.flatnonzero(labels == c)
        rank[members[np.argsort(scores[members])]] = np.arange(len(members))
    return labels, scores, rank


def kept_positions(kept: np.ndarray, labels: np.ndarray, rank: np.ndarray, c: int) -> list[int]:
    return sorted(rank[kept[labels[kept] == c]].tolist())


def test_mdslr_window_on_odd_even_and_small_classes():
    # N = 18, C = 3, keep 0.7: k = int(18 / 3 * 0.7) = 4 for every class, h = 2
    labels, scores, rank = ranked([7, 8, 3])
    kept = select_indices(scores, labels, 0.7, "mdslr")
    assert kept_positions(kept, labels, rank, 0) == [1, 2, 3, 4]  # n 7: m 3, [3 - 2, 3 + 2)
    assert kept_positions(kept, labels, rank, 1) == [2, 3, 4, 5]  # n 8: m 4, [4 - 2, 4 + 2)
    assert kept_positions(kept, labels, rank, 2) == [0, 1, 2]  # n 3 <= k: the whole class
    # odd k = int(18 / 3 * 0.5) = 3, h = 1: one more below the median position than from it up
    kept = select_indices(scores, labels, 0.5, "mdslr")
    assert kept_positions(kept, labels, rank, 0) == [1, 2, 3]  # [3 - 2, 3 + 1)
    assert kept_positions(kept, labels, rank, 1) == [2, 3, 4]  # [4 - 2, 4 + 1)
    assert kept_positions(kept, labels, rank, 2) == [0, 1, 2]
    assert np.array_equal(select_indices(scores, labels, 1.0, "mdslr"), np.arange(18))  # MDSLR's ratio 100


@pytest.mark.parametrize("keep,start,stop", [(0.3, 175, 325), (0.4, 150, 350), (0.5, 125, 375), (0.7, 75, 425)])
def test_mdslr_on_cifar100_counts(keep, start, stop):
    labels, scores, rank = ranked([500] * 100)
    kept = select_indices(scores, labels, keep, "mdslr")
    assert len(kept) == round(50_000 * keep) == 100 * (stop - start)
    assert np.array_equal(np.bincount(labels[kept]), np.full(100, stop - start))
    assert rank[kept].min() == start and rank[kept].max() == stop - 1
    # equal class sizes: the hard and easy arms keep as many of every class
    for rule in ("hardest", "easiest"):
        assert np.array_equal(np.bincount(labels[select_indices(scores, labels, keep, rule)]), np.full(100, stop - start))


def test_mdslr_budget_is_one_floor_for_every_class_unlike_the_proportional_rules():
    labels, scores, _ = ranked([10, 30, 50])  # N / C = 30
    mdslr = np.bincount(labels[select_indices(scores, labels, 0.5, "mdslr")])
    hardest = np.bincount(labels[select_indices(scores, labels, 0.5, "hardest")])
    assert mdslr.tolist() == [10, 15, 15] and hardest.tolist() == [5, 15, 25]
    pooled = select_indices(scores, labels, 0.5, "mdslr", class_balanced=False)  # one group: the global window
    order = np.argsort(scores, kind="stable")
    assert np.array_equal(pooled, np.sort(order[45 - 23 : 45 + 22]))
