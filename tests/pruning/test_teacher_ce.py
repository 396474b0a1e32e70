"""teacher_ce (MDSLR): the teacher's cross-entropy of one seeded training view per image, and the
per-class mean logit std k_y recorded in the same pass, checked against the teacher's view table
(kdprune.train.views) and against hand-computed values."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdprune.data import Augmentation
from kdprune.data.augment import draw_views
from kdprune.data.images import ImageData
from kdprune.models import create_model
from kdprune.pruning.teacher_ce import per_sample_ce_and_std, teacher_ce_scores
from kdprune.train.loop import split_logits
from kdprune.train.views import compute_view_logits

CPU = torch.device("cpu")


def quiet(msg: str) -> None:
    pass


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data() -> ImageData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (60, 3, 12, 12), dtype=torch.uint8, generator=g)
    y = torch.arange(60) % 10
    return ImageData("tiny", x, y, x[:20].clone(), y[:20].clone(), [str(i) for i in range(10)], Augmentation(1, True, "reflect"))  # 18 views


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("resnet8", 10).eval()


@pytest.fixture(scope="module")
def table(teacher, data) -> torch.Tensor:
    return compute_view_logits(teacher, data, CPU)  # fp32: the teacher's logits of every view


def score(data, teacher, seed=0, **settings):
    return teacher_ce_scores(data, {"teacher_model": teacher, **settings}, seed, CPU, quiet)


def looked_up(table: torch.Tensor, data, gen: torch.Generator) -> torch.Tensor:
    top, left, flip = draw_views(len(data.y_train), data.augmentation, gen)
    return table[torch.arange(len(data.y_train)), top, left, flip.long()]


def per_class_mean(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([values[labels == c].mean() for c in range(10)])


def test_ce_and_unbiased_std_of_hand_made_logits():
    ce, std = per_sample_ce_and_std(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]]), torch.tensor([2, 0]))
    log_z = [math.log(math.exp(1) + math.exp(2) + math.exp(3)), math.log(2 + math.exp(4))]
    assert ce.tolist() == pytest.approx([log_z[0] - 3.0, log_z[1] - 0.0], rel=1e-12)
    # std over the classes, divided by C - 1: [1, 2, 3] -> 1; [0, 0, 4] -> sqrt((16 + 16 + 64) / 9 / 2)
    assert std.tolist() == pytest.approx([1.0, math.sqrt(96 / 18)], rel=1e-12)


def test_augmented_is_the_teachers_ce_of_one_seeded_view_per_image(data, teacher, table):
    scores, extras = score(data, teacher, seed=3)
    logits = looked_up(table, data, torch.Generator().manual_seed(3))
    ce, std = per_sample_ce_and_std(logits, data.y_train)
    np.testing.assert_allclose(scores, ce.numpy(), rtol=1e-6)
    assert scores.dtype == np.float64 and scores.shape == (60,)
    # k_y: the mean std over every training image of class y
    np.testing.assert_allclose(extras["class_logit_std"], per_class_mean(std.numpy(), data.y_train.numpy()), rtol=1e-6)
    assert not np.array_equal(scores, score(data, teacher, seed=4)[0])  # another seed, other views


def test_clean_is_the_teachers_ce_of_the_unaugmented_images(data, teacher):
    scores, extras = score(data, teacher, views="clean")
    logits, labels = split_logits(teacher, data, "train", CPU)
    ce, std = per_sample_ce_and_std(logits, labels)
    np.testing.assert_allclose(scores, ce.numpy(), rtol=1e-6)
    np.testing.assert_allclose(extras["class_logit_std"], per_class_mean(std.numpy(), labels.numpy()), rtol=1e-6)
    assert np.array_equal(scores, score(data, teacher, seed=1, views="clean")[0])  # no draws


def test_mean_averages_n_views_drawn_in_turn(data, teacher, table):
    scores, extras = score(data, teacher, seed=2, views="mean", n_views=3)
    gen = torch.Generator().manual_seed(2)
    passes = [per_sample_ce_and_std(looked_up(table, data, gen), data.y_train) for _ in range(3)]
    np.testing.assert_allclose(scores, np.mean([ce.numpy() for ce, _ in passes], axis=0), rtol=1e-6)
    std = np.mean([s.numpy() for _, s in passes], axis=0)
    np.testing.assert_allclose(extras["class_logit_std"], per_class_mean(std, data.y_train.numpy()), rtol=1e-6)
    one = score(data, teacher, seed=2, views="mean", n_views=1)[0]
    np.testing.assert_allclose(one, score(data, teacher, seed=2)[0], rtol=1e-12)  # one view: augmented


def test_a_confident_wrong_teacher_scores_higher(data):
    """Higher = harder: a teacher whose logits favour class 0 scores the class-0 images lowest."""

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([5.0] + [0.0] * 9).expand(x.shape[0], 10)

    scores, extras = score(data, Constant())
    labels = data.y_train.numpy()
    assert scores[labels == 0].max() < scores[labels != 0].min()
    assert np.allclose(extras["class_logit_std"], torch.tensor([5.0] + [0.0] * 9).std().item())
    np.testing.assert_allclose(scores[labels != 0], F.cross_entropy(torch.tensor([[5.0] + [0.0] * 9]), torch.tensor([1])).item(), rtol=1e-6)


def test_refuses_without_a_teacher_or_with_unknown_views(data, teacher):
    with pytest.raises(ValueError, match="needs a trained teacher"):
        teacher_ce_scores(data, {}, 0, CPU, quiet)
    with pytest.raises(ValueError, match="views = 'noisy' is not allowed; allowed: augmented, clean, mean"):
        score(data, teacher, views="noisy")
