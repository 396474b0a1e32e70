"""The training runs shared by the scores (kdprune.pruning.runs): `epoch: 0` means "at
initialisation" for every score, and recording scores refuse it."""

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.models import create_model
from kdprune.pruning import SCORES
from kdprune.pruning.el2n import el2n_from_logits
from kdprune.pruning.forgetting import AccuracyRecorder
from kdprune.pruning.moderate import distances_to_class_median, penultimate_features
from kdprune.pruning.runs import score_runs, trained_epochs
from kdprune.train.loop import split_logits

CPU = torch.device("cpu")
QUIET = lambda m: None  # noqa: E731
AT_INIT = {"arch": "resnet8", "runs": 2, "epoch": 0, "recipe": {"epochs": 5}}


@pytest.fixture(scope="module")
def small_digits():
    data = load_dataset("digits")
    data.x_train, data.y_train = data.x_train[:96], data.y_train[:96]
    return data


def _fresh_models(data, seed, runs=2):
    for k in range(runs):
        torch.manual_seed(seed * 1000 + k)  # what seed_everything does on a CPU
        yield create_model("resnet8", data.num_classes, data.channels).eval()


def test_el2n_at_epoch_0_scores_the_initialised_models(small_digits):
    """Before the fix, el2n passed epoch 0 to fit() as its stop epoch, which trains the whole schedule."""
    expected = np.mean(
        [el2n_from_logits(*split_logits(m, small_digits, "train", CPU)).double().numpy() for m in _fresh_models(small_digits, 3)], axis=0
    )
    got = SCORES.get("el2n")(small_digits, dict(AT_INIT), seed=3, device=CPU, log=QUIET)
    assert got == pytest.approx(expected, rel=1e-6)


def test_moderate_at_epoch_0_uses_the_initialised_extractors(small_digits):
    """Before the fix, moderate passed epoch 0 to fit() as its stop epoch, which trains the whole schedule."""
    expected = np.mean([distances_to_class_median(*penultimate_features(m, small_digits, CPU)) for m in _fresh_models(small_digits, 4)], axis=0)
    got = SCORES.get("moderate")(small_digits, dict(AT_INIT), seed=4, device=CPU, log=QUIET)
    assert got == pytest.approx(expected, rel=1e-6)


def test_trained_epochs_reads_none_as_the_whole_schedule_and_caps_at_it():
    recipe = {"epochs": 5}
    assert trained_epochs({"recipe": recipe}, 100) == 5
    assert trained_epochs({"recipe": recipe, "epoch": 0}, 100) == 0
    assert trained_epochs({"recipe": recipe, "epoch": 2}, 100) == 2
    assert trained_epochs({"recipe": recipe, "epoch": 9}, 100) == 5


def test_runs_are_seeded_seed_times_1000_plus_k_and_untrained_at_epoch_0(small_digits):
    models = [m for m, hook in score_runs(small_digits, dict(AT_INIT), 3, CPU, QUIET, "test")]
    for got, expected in zip(models, _fresh_models(small_digits, 3), strict=True):
        assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), expected.state_dict().values()))


def test_recorders_refuse_zero_epochs():
    with pytest.raises(ValueError, match="at least one epoch"):
        AccuracyRecorder(10, 0)
