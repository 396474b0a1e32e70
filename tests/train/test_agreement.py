"""Teacher and student on the kept subset (kdprune/train/agreement.py, P2-C5): accuracies, gap and
agreement, the same from the teacher's forward and from its view table's clean view."""

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.models import create_model
from kdprune.train.agreement import kept_subset_agreement
from kdprune.train.loop import split_logits
from kdprune.train.views import compute_view_logits

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_gap_and_agreement_by_hand_and_equal_with_the_view_table(digits):
    torch.manual_seed(0)
    teacher, student = create_model("resnet8", 10, 1).eval(), create_model("resnet8", 10, 1).eval()
    subset = np.arange(0, len(digits.y_train), 3)
    direct = kept_subset_agreement(student, digits, subset, CPU, teacher=teacher)
    table = kept_subset_agreement(student, digits, subset, CPU, views=compute_view_logits(teacher, digits, CPU))
    assert direct == pytest.approx(table, abs=1e-12)
    s, y = split_logits(student, digits, "train", CPU)
    t, _ = split_logits(teacher, digits, "train", CPU)
    s, t, y = s[subset].argmax(1), t[subset].argmax(1), y[subset]
    assert direct["student_acc_kept"] == pytest.approx((s == y).float().mean().item())
    assert direct["ts_gap"] == pytest.approx((t == y).float().mean().item() - (s == y).float().mean().item())
    assert direct["agreement_kept"] == pytest.approx((s == t).float().mean().item())


def test_a_model_agrees_with_itself(digits):
    model = create_model("resnet8", 10, 1).eval()
    out = kept_subset_agreement(model, digits, np.arange(100), CPU, teacher=model)
    assert out["agreement_kept"] == 1.0 and out["ts_gap"] == 0.0
    with pytest.raises(ValueError, match="needs the teacher or its view table"):
        kept_subset_agreement(model, digits, np.arange(10), CPU)


def test_overlap_of_the_supervised_samples_and_the_teachers_mistakes_by_hand(digits):
    torch.manual_seed(1)
    teacher, student = create_model("resnet8", 10, 1).eval(), create_model("resnet8", 10, 1).eval()
    subset = np.arange(0, 600)
    supervised = np.arange(0, 600, 4)  # a quarter of the subset
    out = kept_subset_agreement(student, digits, subset, CPU, teacher=teacher, supervised=supervised)
    t, y = split_logits(teacher, digits, "train", CPU)
    wrong = np.flatnonzero((t[subset].argmax(1) != y[subset]).numpy())
    assert 0 < len(wrong) < len(subset)  # an untrained teacher: some right, some wrong
    assert out["teacher_wrong_kept"] == pytest.approx(len(wrong) / len(subset))
    assert out["supervised_share"] == pytest.approx(0.25)
    assert out["wrong_supervised"] == pytest.approx(np.isin(subset[wrong], supervised).mean())
    assert "wrong_supervised" not in kept_subset_agreement(student, digits, subset, CPU, teacher=teacher)
