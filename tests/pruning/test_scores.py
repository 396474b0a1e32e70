import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.pruning import SCORES
from kdprune.pruning.el2n import el2n_from_logits

RECIPE = {"epochs": 20, "batch_size": 64, "lr": 0.05, "schedule": "cosine"}


def test_el2n_of_known_logits():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    got = el2n_from_logits(logits, torch.tensor([0, 0, 0]))
    p = torch.softmax(logits, 1)
    assert got[0] < 1e-3  # confident and right
    assert got[1].item() == pytest.approx(((1 / 3 - 1) ** 2 + 2 / 9) ** 0.5, rel=1e-5)
    assert got[2].item() == pytest.approx(((p[2, 0] - 1) ** 2 + p[2, 1] ** 2 + p[2, 2] ** 2).sqrt().item(), rel=1e-5)
    assert got.argmax().item() == 2  # confidently wrong is the hardest


def test_el2n_ranks_mislabelled_samples_hardest():
    """Samples whose label was changed can never be fitted early: they must get the top scores."""
    data = load_dataset("digits")
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(data.y_train), 10, replace=False)
    data.y_train[flipped] = (data.y_train[flipped] + 1) % 10
    settings = {"arch": "resnet8", "runs": 2, "epoch": 4, "recipe": RECIPE}
    scores = SCORES.get("el2n")(data, settings, seed=0, device=torch.device("cpu"), log=lambda m: None)
    assert scores.shape == (len(data.y_train),)
    n = len(scores)
    rank = np.argsort(np.argsort(-scores))[flipped]  # 0 = hardest
    assert np.median(rank) < 0.01 * n  # typically in the top 1% ...
    assert (rank < 0.05 * n).sum() >= 8  # ... and nearly all in the top 5%
    assert scores[flipped].mean() > 10 * np.median(scores)


def test_random_scores_are_seeded():
    data = load_dataset("digits")
    a = SCORES.get("random")(data, {}, 1, None, print)
    assert np.array_equal(a, SCORES.get("random")(data, {}, 1, None, print))
    assert not np.array_equal(a, SCORES.get("random")(data, {}, 2, None, print))
