"""P3's data selection in the training loop (kdprune.train.step: a per-sample supervision table)
and in the runner (kdprune.jobs.runners: which samples the teacher supervises)."""

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.files import save_npz
from kdprune.jobs.runners import _supervised_of_seeds
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.loop import Recipe, fit, fit_stack, seed_everything

CPU = torch.device("cpu")
SUBSET = np.arange(0, 600)
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def teacher():
    seed_everything(7, CPU)
    return create_model("resnet8", 10, 1).eval()


def train(data, teacher, supervised=None, loss=None):
    seed_everything(0, CPU)
    model = create_model("resnet8", 10, 1)
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05)
    return fit(model, data, SUBSET, recipe, loss or make_loss("kd"), seed=0, device=CPU, teacher=teacher, log=lambda m: None, supervised=supervised)


def test_supervising_every_sample_is_plain_kd(digits, teacher):
    plain, everyone = train(digits, teacher), train(digits, teacher, supervised=SUBSET)
    for a, b in zip(plain["history"], everyone["history"]):  # batch means by another summation order
        assert a["kd"] == pytest.approx(b["kd"], rel=1e-4) and a["ce"] == pytest.approx(b["ce"], rel=1e-4)


def test_unsupervised_samples_train_on_the_ce_term_alone(digits, teacher):
    nobody = train(digits, teacher, supervised=np.array([], dtype=np.int64))
    assert all(h["kd"] == 0.0 and h["ce"] > 0 for h in nobody["history"])
    half = train(digits, teacher, supervised=SUBSET[::2])
    plain = train(digits, teacher)
    assert 0 < half["history"][0]["kd"] < plain["history"][0]["kd"]  # about half of the samples' KD
    dkd = train(digits, teacher, supervised=np.array([], dtype=np.int64), loss=make_loss("dkd"))
    assert all(h["dkd"] == 0.0 for h in dkd["history"])  # every term but `ce` is the teacher's


def test_data_selection_trains_one_run_at_a_time(digits, teacher):
    models = [create_model("resnet8", 10, 1) for _ in range(2)]
    with pytest.raises(ValueError, match="data selection"):
        fit_stack(models, digits, [SUBSET, SUBSET], Recipe(epochs=1), make_loss("kd"), seeds=[0, 1], device=CPU, teacher=teacher, supervised=SUBSET)


def test_the_runner_supervises_the_highest_scores_of_each_runs_subset(tmp_path):
    scores = np.array([0.5, 3.0, -1.0, 3.0, 2.0, 0.0, 9.0, 1.0])
    path = tmp_path / "ds.npz"
    save_npz(path, scores=scores, labels=np.zeros(8, dtype=np.int64))
    spec = {"loss_params": {"supervise": 0.5}, "role": "student", "arch": "resnet8", "seed": 0}
    subset = np.array([7, 1, 3, 4, 0, 2])  # not in index order
    (chosen,) = _supervised_of_seeds([spec], [subset], [path], lambda m: None)
    assert chosen.tolist() == [1, 3, 4]  # 3.0, 3.0, 2.0 of the subset; sample 6 (9.0) is not in it
    assert _supervised_of_seeds([{**spec, "loss_params": {}}], [subset], None, lambda m: None) == []
    with pytest.raises(ValueError, match="one ds_influence score file per seed"):
        _supervised_of_seeds([spec], [subset], None, lambda m: None)
