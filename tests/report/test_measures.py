"""Rank correlations of two score files (P4-C3's measurement), against hand-made files."""

import numpy as np
import pytest
from scipy import stats

from kdprune.files import save_npz
from kdprune.report.measures import rank_correlation, rank_correlations


def score_file(path, scores, labels):
    save_npz(path, scores=np.asarray(scores, dtype=np.float64), labels=np.asarray(labels))
    return path


def test_within_class_and_global_rank_correlations(tmp_path):
    labels = [0, 0, 0, 1, 1, 1]
    # class 0 ranked alike, class 1 reversed; globally class 1 sits above class 0 in both
    a = score_file(tmp_path / "a.npz", [1, 2, 3, 11, 12, 13], labels)
    b = score_file(tmp_path / "b.npz", [5, 6, 7, 23, 22, 21], labels)
    row = rank_correlation(a, b)
    assert row["within_class_mean"] == pytest.approx(0.0) and row["within_class_min"] == pytest.approx(-1.0)
    assert row["within_class_max"] == pytest.approx(1.0) and row["n"] == 6
    assert row["global"] == pytest.approx(stats.spearmanr([1, 2, 3, 11, 12, 13], [5, 6, 7, 23, 22, 21]).statistic)
    assert (row["a"], row["b"]) == ("a", "b")


def test_files_of_other_training_sets_and_odd_lists_are_refused(tmp_path):
    a = score_file(tmp_path / "a.npz", [1, 2, 3], [0, 0, 1])
    b = score_file(tmp_path / "b.npz", [1, 2, 3], [0, 1, 1])
    with pytest.raises(ValueError, match="different training sets"):
        rank_correlation(a, b)
    with pytest.raises(ValueError, match="in pairs"):
        rank_correlations([a])
