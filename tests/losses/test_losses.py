import math

import pytest
import torch

from kdprune.losses import LOSSES, make_loss
from kdprune.losses.kd import kd_divergence


def softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_kd_divergence_matches_hand_computation():
    s, t, temp = [1.0, 2.0, 0.5], [0.2, 3.0, -1.0], 2.0
    ps, pt = softmax([x / temp for x in s]), softmax([x / temp for x in t])
    expected = temp**2 * sum(q * math.log(q / p) for p, q in zip(ps, pt))
    got = kd_divergence(torch.tensor([s]), torch.tensor([t]), temp).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_kd_divergence_is_a_batch_mean():
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    per_row = torch.stack([kd_divergence(a[i : i + 1], b[i : i + 1], 4.0) for i in range(4)])
    assert kd_divergence(a, b, 4.0).item() == pytest.approx(per_row.mean().item(), rel=1e-5)
    assert kd_divergence(a, a, 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_hinton_kd_weights_ce_and_kd_terms():
    logits, teacher, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(logits, y).item()
    kd = kd_divergence(logits, teacher, 4.0).item()
    terms = make_loss("kd", alpha=0.25, temperature=4.0)(logits, y, teacher)
    assert terms["ce"].item() == pytest.approx(0.75 * ce, rel=1e-5)
    assert terms["kd"].item() == pytest.approx(0.25 * kd, rel=1e-5)
    assert make_loss("ce", alpha=0.5)(logits, y)["ce"].item() == pytest.approx(ce, rel=1e-6)


def test_registry_flags_which_losses_need_a_teacher():
    assert LOSSES.get("kd").needs_teacher and not LOSSES.get("ce").needs_teacher
