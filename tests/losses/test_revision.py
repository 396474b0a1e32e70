"""Label Revision (kdprune/losses/revision.py) and the distillers that wrap it (KD, DKD)."""

import math

import pytest
import torch

from kdprune.losses import make_loss
from kdprune.losses.dkd import dkd_terms
from kdprune.losses.kd import kd_divergence, kd_divergence_to
from kdprune.losses.revision import revise


def random_teacher(n: int = 2000, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=gen) * torch.rand(n, 1, generator=gen) * 8  # flat to peaked
    return torch.softmax(logits, dim=1), torch.randint(0, classes, (n,), generator=gen)


@pytest.mark.parametrize("eta", [0.05, 0.5, 0.8, 0.95, 0.999])
def test_the_revised_target_always_peaks_at_the_label(eta):
    p, y = random_teacher()
    revised = revise(p, y, eta)
    assert (revised.argmax(1) == y).all()
    assert torch.allclose(revised.sum(1), torch.ones(len(y)))  # still a distribution
    margin = revised.gather(1, y[:, None]) - revised.scatter(1, y[:, None], -1.0).max(1, keepdim=True).values
    assert (margin >= 1 - eta - 1e-6).all()  # the bound: at least 1 - eta


def test_a_correct_teacher_is_mixed_with_weight_eta():
    p, y = random_teacher(seed=1)
    right = p.argmax(1) == y
    assert right.any() and (~right).any()
    onehot = torch.nn.functional.one_hot(y, 10).float()
    torch.testing.assert_close(revise(p, y, 0.8)[right], (0.8 * p + 0.2 * onehot)[right])
    # a wrong teacher gets a smaller beta: eta / (p_max - p_y + 1)
    beta = 0.8 / (p.max(1).values - p.gather(1, y[:, None])[:, 0] + 1)
    assert (beta[~right] < 0.8).all()
    torch.testing.assert_close(revise(p, y, 0.8)[~right], (beta[:, None] * p + (1 - beta[:, None]) * onehot)[~right])


def test_wrong_only_leaves_the_teachers_right_answers_alone():
    p, y = random_teacher(seed=2)
    right = p.argmax(1) == y
    out = revise(p, y, 0.8, wrong_only=True)
    assert torch.equal(out[right], p[right]) and (out[~right].argmax(1) == y[~right]).all()
    with pytest.raises(ValueError, match="0 < eta < 1"):
        revise(p, y, 1.0)


def test_kd_with_revision_distils_the_revised_target_by_hand():
    s, t, y, temp = [1.0, 2.0, 0.5], [0.2, 3.0, -1.0], 0, 2.0
    pt = [math.exp(v / temp) for v in t]
    pt = [v / sum(pt) for v in pt]
    beta = 0.8 / (max(pt) - pt[y] + 1)
    target = [beta * v + (1 - beta) * (i == y) for i, v in enumerate(pt)]
    ps = [math.exp(v / temp) for v in s]
    ps = [v / sum(ps) for v in ps]
    by_hand = temp**2 * sum(q * math.log(q / p) for p, q in zip(ps, target))
    loss = make_loss("kd", alpha=0.5, temperature=temp, revise=0.8, scale=2.0)
    terms = loss(torch.tensor([s]), torch.tensor([y]), torch.tensor([t]))
    assert terms["kd"].item() == pytest.approx(2.0 * 0.5 * by_hand, rel=1e-5)  # lambda2 = scale alpha = 1
    assert terms["ce"].item() == pytest.approx(1.0 * -math.log(softmax_at(s, 1)[y]), rel=1e-5)  # lambda1 = 1


def softmax_at(xs, temp):
    e = [math.exp(x / temp) for x in xs]
    return [v / sum(e) for v in e]


def test_revision_at_t1_revises_the_teachers_plain_softmax():
    torch.manual_seed(3)
    s, t, y = torch.randn(16, 10), torch.randn(16, 10) * 3, torch.randint(0, 10, (16,))
    at_t1 = make_loss("kd", temperature=4.0, revise=0.8, revise_t1=True)(s, y, t)["kd"]
    expected = 0.9 * kd_divergence_to(s, revise(torch.softmax(t, 1), y, 0.8), 4.0)
    torch.testing.assert_close(at_t1, expected)


def test_without_revision_kd_and_dkd_are_unchanged():
    torch.manual_seed(4)
    s, t, y = torch.randn(16, 10), torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert torch.equal(make_loss("kd", revise=0.0)(s, y, t)["kd"], 0.9 * kd_divergence(s, t, 4.0))
    assert torch.equal(make_loss("dkd")(s, y, t)["dkd"], make_loss("dkd", revise=0.0)(s, y, t)["dkd"])


def test_dkd_with_revision_changes_tckd_only_when_revising_at_t():
    """Revision scales the non-target part uniformly: NCKD's target stays the teacher's (at T);
    TCKD's binary target becomes [p~[y], 1 - p~[y]]."""
    torch.manual_seed(5)
    s, t, y, temp = torch.randn(32, 10) * 2, torch.randn(32, 10) * 2, torch.randint(0, 10, (32,)), 4.0
    p_rev = revise(torch.softmax(t / temp, 1), y, 0.8)
    tckd_r, nckd_r = dkd_terms(s, t, y, temp, teacher_probs=p_rev)
    tckd, nckd = dkd_terms(s, t, y, temp)
    torch.testing.assert_close(nckd_r, nckd, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(tckd_r, tckd)
    # and the decomposition still holds for the revised target: KD(p~) = TCKD(p~) + (1 - p~[y]) NCKD
    kd_rev = kd_divergence_to(s, p_rev, temp, per_sample=True)
    torch.testing.assert_close(tckd_r + (1 - p_rev.gather(1, y[:, None])[:, 0]) * nckd_r, kd_rev, rtol=1e-4, atol=1e-5)
    terms = make_loss("dkd", revise=0.8, temperature=temp)(s, y, t)
    torch.testing.assert_close(terms["dkd"], (1.0 * tckd_r + 8.0 * nckd_r).mean())
