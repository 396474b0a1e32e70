"""P3's data-selection score (kdprune/pruning/ds_influence.py): the closed form against autograd,
a toy problem whose answer is known, and the score job on digits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdprune.data.images import load_dataset
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.pruning import SCORES
from kdprune.pruning.ds_influence import ds_influence_scores, influence, kd_loss
from kdprune.train.loop import Recipe, fit, seed_everything

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_the_closed_form_is_the_dot_product_of_autograd_gradients():
    torch.manual_seed(0)
    n, d, c, temp = 40, 6, 5, 3.0
    h, teacher, y = torch.randn(n, d, dtype=torch.float64), torch.randn(n, c, dtype=torch.float64), torch.randint(0, c, (n,))
    head = torch.nn.Linear(d, c).double()
    held = torch.tensor([1, 5, 7, 20, 33])
    ce = F.cross_entropy(head(h[held]), y[held])
    g_val = torch.autograd.grad(ce, [head.weight, head.bias])
    expected = []
    for i in range(n):
        kd = F.kl_div(F.log_softmax(head(h[i : i + 1]) / temp, 1), F.softmax(teacher[i : i + 1] / temp, 1), reduction="sum") * temp**2
        g = torch.autograd.grad(kd, [head.weight, head.bias])
        expected.append(sum((a * b).sum() for a, b in zip(g, g_val)))
    got = influence(head(h).detach(), h, teacher, y, held, temp)
    torch.testing.assert_close(got, torch.stack(expected))


def test_a_sample_whose_teacher_is_wrong_scores_lowest():
    """Three separable classes, a half-trained linear student, a teacher right everywhere but on one
    sample, where it confidently names another class: its supervision harms the held-out batch."""
    gen = torch.Generator().manual_seed(1)
    centres = torch.eye(3) * 4
    y = torch.arange(60) % 3
    h = centres[y] + torch.randn(60, 3, generator=gen)
    student = h @ torch.eye(3) * 0.3  # a weak student: right direction, not confident
    teacher = 6 * F.one_hot(y, 3).double()
    bad = 17
    teacher[bad] = 6 * F.one_hot((y[bad] + 1) % 3, 3).double()
    held = torch.arange(30, 60)
    scores = influence(student.double(), h.double(), teacher, y, held, 4.0)
    assert scores.argmin().item() == bad and scores[bad] < 0 < scores.median()


def test_the_kd_loss_option_reads_the_per_sample_kd_loss():
    s, t = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 4, dtype=torch.float64)
    expected = F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="none").sum(1) * 4
    torch.testing.assert_close(kd_loss(s, t, 2.0), expected)


def test_the_score_job_on_digits():
    assert SCORES.meta("ds_influence").get("needs_teacher")
    data = load_dataset("digits")
    seed_everything(0, CPU)
    teacher = create_model("resnet8", 10, 1)
    fit(
        teacher, data, np.arange(len(data.y_train)), Recipe(epochs=2, batch_size=64, lr=0.05), make_loss("ce"), seed=0, device=CPU, log=lambda m: None
    )
    settings = {"teacher_model": teacher, "arch": "resnet8", "recipe": {"epochs": 2, "batch_size": 64, "lr": 0.05}, "epoch": 1}
    a = ds_influence_scores(data, settings, 0, CPU, lambda m: None)
    b = ds_influence_scores(data, settings, 0, CPU, lambda m: None)
    assert a.shape == (len(data.y_train),) and np.isfinite(a).all() and np.array_equal(a, b)  # deterministic per seed
    assert not np.array_equal(a, ds_influence_scores(data, settings, 1, CPU, lambda m: None))
    cheap = ds_influence_scores(data, {**settings, "signal": "kd_loss"}, 0, CPU, lambda m: None)
    assert (cheap <= 0).all()
    with pytest.raises(ValueError, match="signal"):
        ds_influence_scores(data, {**settings, "signal": "gradnorm"}, 0, CPU, lambda m: None)
    with pytest.raises(ValueError, match="needs a trained teacher"):
        ds_influence_scores(data, {k: v for k, v in settings.items() if k != "teacher_model"}, 0, CPU, lambda m: None)
