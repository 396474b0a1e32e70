"""The evaluation protocol of a distilled set (kdprune.distill.evaluate): the original's learning-rate
step, CPU determinism, and the stacked fast path against the plain one-model-at-a-time reference."""

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.distill.evaluate import evaluate_synthetic, model_seeds, pass_lrs, train_models

CPU = torch.device("cpu")
QUIET = lambda m: None  # noqa: E731
# tiny: 8 channels, 21 passes, batches of 8 over 20 images (8 + 8 + 4)
SETTINGS = {"epochs": 20, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "batch": 8, "num_eval": 3, "augment": None, "width": 8}

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def synthetic(digits):
    """Two real training images per class, standardised: a stand-in for a distilled set."""
    idx = torch.cat([torch.nonzero(digits.y_train == c).flatten()[:2] for c in range(10)])
    return digits.normalizer(CPU)(digits.x_train[idx]), digits.y_train[idx]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(len(x), 1, 1, 1, generator=generator) < 0.5, x.flip(3), x)


def test_the_learning_rate_drops_tenfold_after_half_of_the_passes():
    lrs = pass_lrs(300, 0.01)
    assert len(lrs) == 301  # range(Epoch + 1)
    assert lrs[:152] == [0.01] * 152 and lrs[152:] == [pytest.approx(0.001)] * 149  # after pass 300 // 2 + 1
    assert pass_lrs(1000, 0.01).index(pytest.approx(0.001)) == 502
    assert pass_lrs(2, 0.01) == [0.01] * 3


def test_evaluation_repeats_exactly_on_the_cpu(digits, synthetic):
    settings = {**SETTINGS, "augment": random_flip}
    a = evaluate_synthetic(*synthetic, digits, settings, 0, CPU, QUIET)
    b = evaluate_synthetic(*synthetic, digits, settings, 0, CPU, QUIET)
    assert a["accs"] == b["accs"] and len(a["accs"]) == 3 and a["passes"] == 21
    assert a["mean"] == pytest.approx(np.mean(a["accs"])) and a["std"] == pytest.approx(np.std(a["accs"]))
    assert evaluate_synthetic(*synthetic, digits, SETTINGS, 0, CPU, QUIET)["mean"] > 0.3  # it learns from 20 images (chance: 0.1)
    first = train_models(*synthetic, digits, {**settings, "num_eval": 1}, 0, CPU)[0][1].state_dicts()[0]
    other = train_models(*synthetic, digits, {**settings, "num_eval": 1}, 1, CPU)[0][1].state_dicts()[0]
    assert any(not torch.equal(first[k], other[k]) for k in first)
    assert len({model_seeds(0, k) for k in range(20)} | {model_seeds(1, k) for k in range(20)}) == 40


@pytest.mark.parametrize("augment", [None, random_flip], ids=["plain-data", "augmented"])
def test_stacked_and_plain_paths_train_the_same_models(digits, synthetic, augment):
    settings = {**SETTINGS, "augment": augment}
    plain = evaluate_synthetic(*synthetic, digits, {**settings, "path": "plain"}, 0, CPU, QUIET)
    stacked = evaluate_synthetic(*synthetic, digits, {**settings, "stack": 2}, 0, CPU, QUIET)  # groups of 2 + 1
    assert plain["accs"] == stacked["accs"]
    reference = [model.state_dict() for _, model in train_models(*synthetic, digits, {**settings, "path": "plain"}, 0, CPU)]
    states = [s for _, stack in train_models(*synthetic, digits, settings, 0, CPU) for s in stack.state_dicts()]
    assert len(states) == 3
    for want, got in zip(reference, states):
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)


def test_an_unknown_path_is_refused(digits, synthetic):
    with pytest.raises(ValueError, match="path = 'fast' is not allowed; allowed: stacked, plain"):
        evaluate_synthetic(*synthetic, digits, {**SETTINGS, "path": "fast"}, 0, CPU, QUIET)
