import math

import pytest
import torch

from kdprune.losses import LOSSES, make_loss
from kdprune.losses.kd import kd_divergence, reshape_logits


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


def test_reshape_scales_each_teacher_row_to_its_labels_class_std():
    """MDSLR: z' = z / std(z) * k_y before the temperature, std unbiased over the classes, no mean
    subtracted; in the KD term only."""
    teacher = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]])
    y = torch.tensor([2, 0])
    k = torch.tensor([1.5, 7.0, 2.0])  # k_y per class: row 0 has label 2, row 1 label 0
    by_hand = torch.tensor([[2.0, 4.0, 6.0], [0.0, 0.0, 4.0 / math.sqrt(96 / 18) * 1.5]])  # std 1 and sqrt(96/18)
    student = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, 0.0]])
    terms = make_loss("kd", alpha=0.75, temperature=2.0, reshape=True).with_class_scale(k)(student, y, teacher)
    assert terms["kd"].item() == pytest.approx(0.75 * kd_divergence(student, by_hand, 2.0).item(), rel=1e-6)
    assert terms["ce"].item() == pytest.approx(0.25 * torch.nn.functional.cross_entropy(student, y).item(), rel=1e-6)
    assert torch.allclose(reshape_logits(teacher, y, k), by_hand)
    # off by default; a class scale changes nothing then
    plain = make_loss("kd", alpha=0.75, temperature=2.0)
    assert not plain.reshape and plain.with_class_scale(k)(student, y, teacher)["kd"].item() == plain(student, y, teacher)["kd"].item()


def test_reshape_without_a_class_scale_is_refused_and_copies_keep_their_own():
    loss = make_loss("kd", reshape=True)
    with pytest.raises(ValueError, match="needs the teacher's per-class logit std"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 3))
    scaled = loss.with_class_scale([1.0, 2.0, 3.0])
    assert loss.class_scale is None and scaled.class_scale.tolist() == [1.0, 2.0, 3.0] and scaled == loss


@pytest.mark.parametrize("name", ["ce", "kd"])
def test_sample_weights_none_is_the_plain_mean_and_all_ones_agree_with_it(name):
    """`sample_weight=None` computes exactly what the losses computed before the argument existed;
    all-ones weights go through the per-sample terms (another summation order), so they agree to
    float32 rounding, not bit for bit."""
    torch.manual_seed(1)
    logits, teacher, y = torch.randn(37, 10) * 3, torch.randn(37, 10) * 3, torch.randint(0, 10, (37,))
    loss = make_loss(name, alpha=0.7, temperature=2.0)
    plain = loss(logits, y, teacher)
    old = {"ce": torch.nn.functional.cross_entropy(logits, y)}
    if name == "kd":
        old = {"ce": 0.3 * old["ce"], "kd": 0.7 * kd_divergence(logits, teacher, 2.0)}
    assert plain.keys() == old.keys() and all(torch.equal(plain[k], old[k]) for k in old)
    assert all(torch.equal(a, b) for a, b in zip(plain.values(), loss(logits, y, teacher, sample_weight=None).values()))
    ones = loss(logits, y, teacher, sample_weight=torch.ones(37))
    assert ones.keys() == plain.keys()
    for k in plain:
        torch.testing.assert_close(ones[k], plain[k], rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["ce", "kd", "dkd"])
def test_per_sample_terms_and_weighted_means(name):
    torch.manual_seed(2)
    logits, teacher, y = torch.randn(16, 10), torch.randn(16, 10), torch.randint(0, 10, (16,))
    loss = make_loss(name)
    per = loss.per_sample(logits, y, teacher)
    plain = loss(logits, y, teacher)
    assert per.keys() == plain.keys() and all(v.shape == (16,) for v in per.values())
    for k in plain:  # one value per sample, whose batch mean is the term
        torch.testing.assert_close(per[k].mean(), plain[k], rtol=1e-6, atol=0)
        rows = [loss(logits[i : i + 1], y[i : i + 1], teacher[i : i + 1])[k] for i in range(16)]
        torch.testing.assert_close(per[k], torch.stack(rows), rtol=1e-5, atol=1e-7)
    w = torch.rand(16) * 2
    weighted = loss(logits, y, teacher, sample_weight=w)
    for k in plain:  # divided by the batch size, not by the sum of the weights (InfoBatch's rescaling)
        torch.testing.assert_close(weighted[k], (w * per[k]).sum() / 16, rtol=1e-6, atol=0)
    w_logits = logits.clone().requires_grad_(True)
    sum(loss(w_logits, y, teacher, sample_weight=torch.where(torch.arange(16) < 8, 1.0, 0.0)).values()).backward()
    assert w_logits.grad[8:].abs().max() == 0 and w_logits.grad[:8].abs().max() > 0  # weight 0: no gradient


def test_reshape_applies_in_the_per_sample_terms_too():
    """InfoBatch's weighted path goes through per_sample: it must reshape as __call__ does."""
    torch.manual_seed(3)
    logits, teacher, y = torch.randn(12, 5), torch.randn(12, 5) * 2, torch.randint(0, 5, (12,))
    loss = make_loss("kd", reshape=True).with_class_scale(torch.rand(5) + 0.5)
    plain, ones = loss(logits, y, teacher), loss(logits, y, teacher, sample_weight=torch.ones(12))
    for k in plain:
        torch.testing.assert_close(ones[k], plain[k], rtol=1e-5, atol=0)
    assert not torch.allclose(loss.per_sample(logits, y, teacher)["kd"], make_loss("kd").per_sample(logits, y, teacher)["kd"])
