"""DKD (kdprune/losses/dkd.py) against a hand computation, against the decomposition of Hinton's KD
(KD = TCKD + (1 - p_t[y]) NCKD, Zhao et al. eq. 3) on random logits, its warm-up, and in training."""

import math

import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.losses import LOSSES, make_loss
from kdprune.losses.dkd import DKD, dkd_terms
from kdprune.losses.kd import kd_divergence
from kdprune.models import create_model
from kdprune.train.loop import Recipe, fit, seed_everything

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_tckd_and_nckd_match_a_hand_computation():
    s, t, y, temp = [1.0, 2.0, 0.5, -0.3], [0.2, 3.0, -1.0, 0.4], 1, 2.0
    ps, pt = softmax([x / temp for x in s]), softmax([x / temp for x in t])
    tckd = temp**2 * kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
    others = [i for i in range(4) if i != y]
    qs, qt = softmax([s[i] / temp for i in others]), softmax([t[i] / temp for i in others])
    nckd = temp**2 * kl(qt, qs)
    got_t, got_n = dkd_terms(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), temp)
    assert got_t.item() == pytest.approx(tckd, rel=1e-5) and got_n.item() == pytest.approx(nckd, rel=1e-5)
    terms = DKD(ce_weight=0.5, alpha=2.0, beta=3.0, temperature=temp)(torch.tensor([s]), torch.tensor([y]), torch.tensor([t]))
    ce = -math.log(softmax(s)[y])
    assert terms["ce"].item() == pytest.approx(0.5 * ce, rel=1e-5)
    assert terms["dkd"].item() == pytest.approx(2.0 * tckd + 3.0 * nckd, rel=1e-5)


@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_kd_decomposes_into_tckd_and_weighted_nckd_on_random_logits(temp):
    torch.manual_seed(0)
    s, t = torch.randn(64, 100) * 3, torch.randn(64, 100) * 3
    y = torch.randint(0, 100, (64,))
    tckd, nckd = dkd_terms(s, t, y, temp)
    pt_y = torch.softmax(t / temp, dim=1)[torch.arange(64), y]
    kd = kd_divergence(s, t, temp, per_sample=True)
    torch.testing.assert_close(tckd + (1 - pt_y) * nckd, kd, rtol=1e-4, atol=1e-5)


def test_warmup_rises_per_epoch_as_mdistiller_counts_them():
    """mdistiller counts epochs from 1: the factor is min(epoch / warmup, 1); ours from 0."""
    torch.manual_seed(1)
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    loss = make_loss("dkd", warmup=20)
    full = loss(s, y, t)["dkd"]  # outside a training loop: warmed up
    factors = []
    for epoch in (0, 9, 19, 100):
        loss.start_epoch(epoch, CPU)
        factors.append((loss(s, y, t)["dkd"] / full).item())
    assert factors == pytest.approx([1 / 20, 10 / 20, 1.0, 1.0], rel=1e-5)
    assert loss(s, y, t)["ce"].item() == pytest.approx(torch.nn.functional.cross_entropy(s, y).item(), rel=1e-6)
    no_warmup = make_loss("dkd", warmup=0)
    no_warmup.start_epoch(0, CPU)
    assert no_warmup(s, y, t)["dkd"].item() == pytest.approx(full.item(), rel=1e-6)


def test_defaults_are_mdistillers_cifar100_ones():
    assert LOSSES.get("dkd").needs_teacher
    assert (DKD().ce_weight, DKD().alpha, DKD().beta, DKD().temperature, DKD().warmup) == (1.0, 1.0, 8.0, 4.0, 20.0)


def test_a_training_run_warms_the_dkd_term_up_epoch_by_epoch():
    """In the loop the loss gets each epoch before it starts: the logged DKD term of epoch 1 of a
    2-epoch warm-up is half-weighted, and training runs with a teacher's logits."""
    data = load_dataset("digits")
    subset = torch.arange(0, 600)
    seed_everything(0, CPU)
    teacher = create_model("resnet8", 10, 1).eval()
    seed_everything(0, CPU)
    student = create_model("resnet8", 10, 1)
    loss = make_loss("dkd", warmup=2)
    result = fit(
        student, data, subset.numpy(), Recipe(epochs=3, batch_size=64, lr=0.05), loss, seed=0, device=CPU, teacher=teacher, log=lambda m: None
    )
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3] and all(h["dkd"] > 0 for h in result["history"])
    assert float(loss.__dict__["_warm"]) == 1.0  # the last epoch was warmed up
