"""Herding (kdprune.pruning.herding): greedy orders worked out by hand, a brute-force check of the
greedy step, the score -> `hardest` mapping (the first k picks of every class), and the score on a
teacher's features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.models import create_model
from kdprune.pruning import SCORES
from kdprune.pruning.herding import herding_order, herding_scores_of
from kdprune.pruning.moderate import penultimate_features
from kdprune.pruning.selection import select_indices

CPU = torch.device("cpu")


def test_greedy_order_in_one_dimension_by_hand():
    # mean 3.2. Targets (i + 1) * mean - picked sum: 3.2 -> 3; 3.4 -> 2; 4.6 -> 1; 6.8 -> 10; then 0.
    order = herding_order(np.array([[0.0], [1.0], [2.0], [3.0], [10.0]]))
    assert order.tolist() == [3, 2, 1, 4, 0]
    # DeepCore's argmax (`pick: farthest`), targets (i + 1) * 3.2 - picked sum: 3.2 -> 10 (6.8 away);
    # -3.6 -> 3 (6.6 away); -3.4 -> 2 (5.4); -2.2 -> 1 (3.2); then 0
    farthest = herding_order(np.array([[0.0], [1.0], [2.0], [3.0], [10.0]]), pick="farthest")
    assert farthest.tolist() == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="herding pick = 'middle' is not allowed"):
        herding_order(np.zeros((2, 1)), pick="middle")


def test_greedy_order_in_two_dimensions_by_hand_and_ties_go_to_the_lower_index():
    # mean (1.25, 1.25): (1, 1) first; target (1.5, 1.5): (0, 0); target (2.75, 2.75): (4, 0) and
    # (0, 4) are equally near, the lower index wins; then (0, 4).
    order = herding_order(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [1.0, 1.0]]))
    assert order.tolist() == [3, 0, 1, 2]


def brute_force_order(x: np.ndarray) -> list[int]:
    mu, picked = x.mean(0), []
    for _ in range(len(x)):
        rest = [i for i in range(len(x)) if i not in picked]
        gaps = [np.linalg.norm(x[picked + [i]].mean(0) - mu) for i in rest]
        picked.append(rest[int(np.argmin(gaps))])
    return picked


def test_each_pick_brings_the_running_mean_closest_to_the_class_mean():
    x = np.random.default_rng(0).normal(size=(30, 4))
    assert herding_order(x).tolist() == brute_force_order(x)


@pytest.fixture(scope="module")
def toy():
    """Three classes of unequal size in shuffled order, 5-d features."""
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat([0, 1, 2], [17, 9, 24]))
    features = rng.normal(size=(len(labels), 5)) + labels[:, None]
    return features, labels


def test_score_is_the_pick_order_per_class(toy):
    features, labels = toy
    scores = herding_scores_of(features, labels)
    for c in range(3):
        members = np.flatnonzero(labels == c)
        picks = members[herding_order(features[members])]
        assert scores[picks].tolist() == pytest.approx((1 - np.arange(len(members)) / len(members)).tolist())
        assert np.all(np.diff(scores[picks]) < 0)  # strictly falling: no ties within a class


@pytest.mark.parametrize("keep", [0.05, 0.1, 0.3, 0.5, 0.9, 1.0])
def test_keep_hardest_on_the_score_keeps_each_classs_first_k_picks(toy, keep):
    features, labels = toy
    scores = herding_scores_of(features, labels)
    expected = []
    for c in range(3):
        members = np.flatnonzero(labels == c)
        k = max(1, round(keep * len(members)))
        expected.extend(members[herding_order(features[members])[:k]])
    kept = select_indices(scores, labels, keep, "hardest", class_balanced=True)
    assert kept.tolist() == sorted(expected)


def test_the_score_reads_the_teachers_penultimate_features():
    digits = load_dataset("digits")
    data = dataclasses.replace(digits, x_train=digits.x_train[:200].clone(), y_train=digits.y_train[:200].clone())
    torch.manual_seed(0)
    teacher = create_model("resnet8", 10, 1)
    teacher.train()  # the score puts it in eval mode
    scores = SCORES.get("herding")(data, {"teacher": "resnet8", "runs": 1, "teacher_model": teacher}, 5, CPU, lambda m: None)
    assert not teacher.training
    features, labels = penultimate_features(teacher, data, CPU)
    assert np.array_equal(scores, herding_scores_of(features, labels))
    again = SCORES.get("herding")(data, {"teacher": "resnet8", "runs": 1, "teacher_model": teacher}, 6, CPU, lambda m: None)
    assert np.array_equal(scores, again)  # the teacher fixes it: the seed does not enter
    with pytest.raises(ValueError, match="runs must be 1"):
        SCORES.get("herding")(data, {"arch": "resnet8", "runs": 2, "epoch": 0, "recipe": {"epochs": 1}}, 0, CPU, lambda m: None)
