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
