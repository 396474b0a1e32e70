"""BiLP's static criterion (kdprune.pruning.train_loss: per-sample training loss, LossInit /
LossConverge) and scores read from a file with a checksum (kdprune.pruning.imported)."""

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdprune.data.images import load_dataset
from kdprune.models import create_model
from kdprune.pruning import SCORES
from kdprune.pruning.imported import imported_scores
from kdprune.train.loop import split_logits

CPU = torch.device("cpu")
QUIET = lambda m: None  # noqa: E731

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    data.x_train, data.y_train = data.x_train[:400].clone(), data.y_train[:400].clone()
    return data


def test_train_loss_at_init_is_the_mean_cross_entropy_of_the_runs(digits):
    settings = {"arch": "resnet8", "runs": 2, "epoch": 0, "recipe": {"epochs": 5}}
    got = SCORES.get("train_loss")(digits, settings, seed=3, device=CPU, log=QUIET)
    expected = []
    for k in range(2):
        torch.manual_seed(3 * 1000 + k)  # run k's seed (kdprune.pruning.runs)
        logits, labels = split_logits(create_model("resnet8", 10, 1).eval(), digits, "train", CPU)
        expected.append(F.cross_entropy(logits.double(), labels, reduction="none").numpy())
    assert got.dtype == np.float64 and got.shape == (400,)
    np.testing.assert_allclose(got, np.mean(expected, axis=0), rtol=1e-6)


def test_mislabelled_samples_keep_a_high_loss_at_convergence(digits):
    data = load_dataset("digits")
    data.x_train, data.y_train = digits.x_train.clone(), digits.y_train.clone()
    flipped = np.random.default_rng(0).choice(400, 8, replace=False)
    data.y_train[flipped] = (data.y_train[flipped] + 1) % 10
    converge = {"arch": "resnet8", "runs": 1, "recipe": {"epochs": 15, "batch_size": 64, "lr": 0.05, "schedule": "cosine"}}
    scores = SCORES.get("train_loss")(data, converge, seed=0, device=CPU, log=QUIET)
    rank = np.argsort(np.argsort(-scores))[flipped]  # 0 = highest loss
    assert (rank < 0.05 * len(scores)).all() and np.median(rank) < 0.02 * len(scores)
    assert scores[flipped].mean() > 10 * np.median(scores)


# -- imported scores ---------------------------------------------------------------------------------


def _write(path, values) -> str:
    if path.suffix == ".json":
        path.write_text(json.dumps(list(values)))
    else:
        np.save(path, np.asarray(values))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".json", ".npy"])
def test_imported_scores_read_the_file(digits, tmp_path, suffix):
    values = np.linspace(0.0, 3.0, 400)
    path = tmp_path / f"scores{suffix}"
    sha = _write(path, values)
    got = imported_scores(digits, {"file": str(path), "sha256": sha}, 0, CPU, QUIET)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, values)


def test_imported_scores_refuse_a_wrong_or_missing_checksum(digits, tmp_path):
    path = tmp_path / "scores.json"
    sha = _write(path, np.zeros(400))
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(ValueError, match=rf"^score imported: sha256 = '{wrong}' is not allowed: .* has sha256 {sha}; allowed: ") as err:
        imported_scores(digits, {"file": str(path), "sha256": wrong}, 0, CPU, QUIET)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^score imported: sha256 = None is not allowed: a checksum of the file is required; allowed: "):
        imported_scores(digits, {"file": str(path)}, 0, CPU, QUIET)


def test_imported_scores_refuse_a_file_of_the_wrong_length(digits, tmp_path):
    path = tmp_path / "scores.npy"
    sha = _write(path, np.zeros(399))
    with pytest.raises(
        ValueError, match=r"^score imported: file = '.*scores.npy' is not allowed: it holds scores of shape \(399,\).* 400 samples; allowed: "
    ):
        imported_scores(digits, {"file": str(path), "sha256": sha}, 0, CPU, QUIET)
    with pytest.raises(ValueError, match=r"^score imported: file = '.*absent.json' is not allowed: no such file; allowed: "):
        imported_scores(digits, {"file": str(tmp_path / "absent.json"), "sha256": sha}, 0, CPU, QUIET)
