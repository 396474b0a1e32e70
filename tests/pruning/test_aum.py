"""AUM (area under the margin, as the CCS code computes it): known margins, the recorder, the run on
digits with flipped labels, and the stored sign (higher = harder)."""

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.pruning import SCORES
from kdprune.pruning.aum import MarginRecorder, logit_margins, probability_margins

CPU = torch.device("cpu")
QUIET = lambda m: None  # noqa: E731


def test_probability_margins_known_answer():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    got = probability_margins(logits, torch.tensor([0, 1, 2])).numpy()
    # assigned minus the largest OTHER probability: 0.7 - 0.2, 0.2 - 0.7, 0.8 - 0.1
    assert got == pytest.approx([0.5, -0.5, 0.7])


def test_logit_margins_are_pleiss_definition():
    logits = torch.tensor([[3.0, 1.0, -2.0], [0.5, 2.5, 2.0]])
    # assigned logit minus the largest other logit: 3 - 1, 0.5 - 2.5
    assert logit_margins(logits, torch.tensor([0, 0])).numpy() == pytest.approx([2.0, -2.0])


def test_margin_recorder_averages_over_epochs_and_refuses_gaps():
    rec = MarginRecorder(3, 2)
    certain = torch.tensor([[50.0, 0.0], [0.0, 50.0]])  # probabilities 1/0: margins +1 or -1
    rec(0, torch.tensor([0, 1]), certain, torch.tensor([0, 0]))  # 0: +1, 1: -1
    with pytest.raises(RuntimeError, match="never recorded"):
        rec.aum()
    rec(0, torch.tensor([2]), certain[:1], torch.tensor([0]))  # 2: +1
    rec(1, torch.tensor([2, 0]), certain, torch.tensor([1, 1]))  # 2: -1, 0: +1
    rec(1, torch.tensor([1]), certain[:1], torch.tensor([1]))  # 1: -1 (class 0 preferred)
    assert rec.aum() == pytest.approx([1.0, -1.0, 0.0])


def test_aum_ranks_flipped_digits_hardest_and_is_stored_negated():
    data = load_dataset("digits")
    flipped = np.random.default_rng(0).choice(len(data.y_train), 10, replace=False)
    data.y_train[flipped] = (data.y_train[flipped] + 1) % 10
    settings = {"arch": "resnet8", "runs": 1, "recipe": {"epochs": 5, "batch_size": 64, "lr": 0.05, "schedule": "cosine"}}
    scores = SCORES.get("aum")(data, settings, seed=0, device=CPU, log=QUIET)
    assert scores.dtype == np.float64 and scores.shape == (len(data.y_train),)
    assert np.all(np.abs(scores) <= 1.0)  # a mean of probability margins
    assert np.all(scores[flipped] > 0)  # negative AUM (the network prefers another class), stored negated
    assert np.median(scores) < 0  # most clean samples have a positive margin
    ranks = np.argsort(np.argsort(-scores, kind="stable"), kind="stable")  # 0 = hardest
    assert ranks[flipped].max() < 0.05 * len(scores)
