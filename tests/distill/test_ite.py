"""BiLP's causal-effect criterion (kdprune.distill.ite): the closed forms against an explicit
leave-one-out recomputation of the loss gradient w.r.t. the synthetic images (float64, a tiny
ConvNet), the two-tailed drop, and the filter's refresh interval."""

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdprune.data.images import load_dataset
from kdprune.distill import DISTILLERS
from kdprune.distill.ite import CausalEffectFilter, dc_causal_effects, dm_causal_effects, two_tailed_keep
from kdprune.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return create_model("ConvNet", 3, 1, image_size=8, width=4, depth=2).double()  # embedding: 4 x 3 x 3 = 36


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def siamese(x: torch.Tensor) -> torch.Tensor:
    """A fixed differentiable augmentation standing in for one Siamese DSA draw."""
    return 1.2 * x.flip(3) + 0.1


def leave_one_out(loss, syn: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """|| grad_S loss(S, real) - grad_S loss(S, real without i) || for every i, recomputed."""

    def gradient(batch):
        s = syn.clone().requires_grad_(True)
        return torch.autograd.grad(loss(s, batch), s)[0]

    full = gradient(real)
    return torch.stack([(gradient(torch.cat([real[:i], real[i + 1 :]])) - full).norm() for i in range(len(real))])


@pytest.mark.parametrize("gram", [False, True], ids=["vjp", "gram"])
def test_dm_closed_form_equals_leave_one_out(net, gram):
    real, syn = images(7, 1), images(3, 2)

    def dm_loss(s, r):
        return ((net.features(siamese(r)).mean(0) - net.features(siamese(s)).mean(0)) ** 2).sum()

    expected = leave_one_out(dm_loss, syn, real)
    with torch.no_grad():
        f = net.features(siamese(real))
    got = dm_causal_effects(f, syn, lambda s: net.features(siamese(s)), gram=gram, chunk=4)
    assert not got.requires_grad
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def cosine_distance(g_syn, g_real):
    """A matching distance of DC's kind: 1 - cosine per output row of every weight, biases ignored."""
    total = torch.zeros((), dtype=torch.float64)
    for s, r in zip(g_syn, g_real):
        if s.dim() > 1:
            s, r = s.flatten(1), r.flatten(1)
            total = total + (1 - (s * r).sum(-1) / (s.norm(dim=-1) * r.norm(dim=-1) + 1e-6)).sum()
    return total


def dc_loss(net, cls):
    params = list(net.parameters())

    def loss(s, r):
        g_real = torch.autograd.grad(F.cross_entropy(net(siamese(r)), torch.full((len(r),), cls)), params)
        g_syn = torch.autograd.grad(F.cross_entropy(net(siamese(s)), torch.full((len(s),), cls)), params, create_graph=True)
        return cosine_distance(g_syn, [g.detach() for g in g_real])

    return loss


def test_dc_exact_effect_equals_leave_one_out_and_first_order_approaches_it(net):
    syn = images(2, 3)
    small = images(6, 4)
    exact = dc_causal_effects(net, small, syn, 1, cosine_distance, siamese, exact=True)
    torch.testing.assert_close(exact, leave_one_out(dc_loss(net, 1), syn, small), rtol=1e-9, atol=1e-12)
    # first order in the left-out sample's share (1 / (n - 1)) of the real gradient: close for a larger batch
    large = images(40, 5)
    expected = leave_one_out(dc_loss(net, 1), syn, large)
    first = dc_causal_effects(net, large, syn, 1, cosine_distance, siamese, chunk=16)
    assert ((first - expected).abs() / expected).max() < 0.15
    assert torch.corrcoef(torch.stack([first, expected]))[0, 1] > 0.95


def test_two_tailed_keep_drops_both_ends():
    effects = torch.tensor([5.0, 0.1, 9.0, 3.0, 4.0, 0.2, 7.0, 6.0, 2.0, 8.0])
    assert two_tailed_keep(effects, 0.2).tolist() == [0, 3, 4, 6, 7, 8]  # without 0.1, 0.2 and 8.0, 9.0
    assert two_tailed_keep(effects, 0.0).tolist() == list(range(10))
    assert two_tailed_keep(effects, 0.25).tolist() == [0, 3, 4, 6, 7, 8]  # int(2.5) = 2 per tail
    assert two_tailed_keep(torch.zeros(5), 0.2).tolist() == [1, 2, 3]  # ties: by position
    with pytest.raises(ValueError, match="beta = 0.5 is not allowed"):
        two_tailed_keep(effects, 0.5)


@dataclass
class Batch:
    """What the filter reads of kdprune.distill.synthetic.RealBatch, plus the synthetic images."""

    images: torch.Tensor
    indices: torch.Tensor
    cls: int
    net: torch.nn.Module | None
    iteration: int
    method: str
    syn: torch.Tensor | None = None

    def keep(self, which):
        which = torch.as_tensor(which)
        return replace(self, images=self.images[which], indices=self.indices[which])


class Scripted(CausalEffectFilter):
    """Effects given by sample id (a stand-in for the real ones), counting how often it is asked."""

    def __init__(self, by_id, **kw):
        super().__init__(**kw)
        self.by_id, self.scored = by_id, 0

    def effects(self, batch):
        self.scored += 1
        return torch.tensor([self.by_id[int(i)] for i in batch.indices])


def test_the_filter_refreshes_every_interval_calls_of_a_class():
    by_id = {i: float(i) for i in range(100)}
    f = Scripted(by_id, beta=0.2, interval=3)

    def call(ids, cls=0):
        ids = torch.tensor(ids)
        return f(Batch(ids.double().view(-1, 1, 1, 1), ids, cls, None, 0, "dm")).indices.tolist()

    assert call(range(10)) == [2, 3, 4, 5, 6, 7] and f.scored == 1  # refresh: both tails out
    assert f.dropped == {0, 1, 8, 9}
    assert call([0, 9, 11, 12]) == [11, 12] and f.scored == 1  # no refresh: the record decides
    assert call([1, 5, 50]) == [5, 50] and f.scored == 1
    assert call(range(5), cls=1) == [1, 2, 3] and f.scored == 2  # another class counts its own calls
    assert call([0, 1, 8, 9, 20, 21, 22, 23, 24, 25]) == [8, 9, 20, 21, 22, 23] and f.scored == 3  # call 3 of class 0
    assert f.dropped == {0, 1, 24, 25, 4} and f.refreshes == 3  # 8 and 9 are back, 4 from class 1


def test_the_filter_scores_dm_batches_with_the_closed_form(net):
    real, syn = images(10, 6), images(3, 7)
    batch = Batch(real, torch.arange(100, 110), 2, net, 0, "dm", syn)
    kept = CausalEffectFilter(beta=0.1, interval=2)(batch)
    with torch.no_grad():
        effects = dm_causal_effects(net.features(real), syn, net.features)
    assert kept.indices.tolist() == [100 + int(p) for p in two_tailed_keep(effects, 0.1)]
    with pytest.raises(ValueError, match="needs the class's synthetic images"):
        CausalEffectFilter(beta=0.1)(replace(batch, syn=None))


@pytest.mark.parametrize("method,dsa", [("dm", True), ("dc", False)])
def test_the_causal_effect_filter_prunes_inside_a_real_distillation(method, dsa):
    """Wired into DM (with DSA: the filter scores under the step's Siamese draw) and DC: each class's
    batch loses both tails at every refresh, and the record names real training images."""
    digits = load_dataset("digits")
    seen = []
    causal = CausalEffectFilter(beta=0.25, interval=2)

    def spy(batch):
        kept = causal(batch)
        seen.append((len(batch.images), len(kept.images), batch.augment is not None, batch.syn.shape))
        return kept

    settings = {"net_width": 16, "batch_real": 16, "log_every": 0, "iterations": 3, "dsa": dsa, "real_batch_filter": spy}
    out = DISTILLERS.get(method)(digits, np.arange(len(digits.y_train)), 1, settings, 0, "cpu", log=lambda m: None)
    assert out["images"].shape == (10, 1, 8, 8) and causal.refreshes > 0
    refreshed = [kept for n, kept, _, _ in seen[:10]]  # the first call of every class is a refresh
    assert refreshed == [16 - 2 * 4] * 10 and all(aug == dsa and syn == (1, 1, 8, 8) for _, _, aug, syn in seen)
    assert causal.dropped and max(causal.dropped) < len(digits.y_train)
