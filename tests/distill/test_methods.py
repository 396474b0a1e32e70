"""Dataset distillation (kdprune.distill): the loop-count table, `match_loss` by hand, DSA's Siamese
draw (the same draw, the same transform; gradients reach the images), the synthetic set's
initialisation (real images of the right class, only from the subset), determinism under a seed,
the real-batch filter hook, and DM and DC lowering their matching losses on the digits with a
narrow ConvNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.distill import DISTILLERS
from kdprune.distill import dsa as D
from kdprune.distill.dc import LOOPS, distill_dc, get_loops, gradient_match, match_loss
from kdprune.distill.dm import distill_dm, embedding_match
from kdprune.distill.synthetic import RealPool, fresh_network, initial_images

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
TINY = {"net_width": 16, "batch_real": 32, "log_every": 0}  # narrow ConvNet, small real batches


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_the_registry_declares_both_methods():
    assert {"dc", "dm"} <= set(DISTILLERS.names())
    assert DISTILLERS.get("dc") is distill_dc and DISTILLERS.get("dm") is distill_dm


def test_loop_counts_per_ipc_are_the_originals():
    assert LOOPS == {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
    assert get_loops(10) == (10, 50)
    with pytest.raises(ValueError, match="no loop counts for ipc 5"):
        get_loops(5)


def test_match_loss_is_zero_for_equal_gradients_and_matches_a_hand_computation():
    g = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(10, 36), torch.randn(10)]
    assert match_loss(g, g).item() == pytest.approx(0.0, abs=1e-5)
    # conv 2 x 1 x 1 x 2: channel 0 orthogonal (1 - 0), channel 1 equal (1 - 1); linear 1 x 2 opposite
    # (1 - (-1)); biases count 0. Total 3 (less the 1e-6 in the denominators).
    real = [torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]]), torch.tensor([5.0, 1.0]), torch.tensor([[1.0, 0.0]]), torch.tensor([2.0])]
    syn = [torch.tensor([[[[0.0, 1.0]]], [[[1.0, 1.0]]]]), torch.tensor([0.0, 3.0]), torch.tensor([[-1.0, 0.0]]), torch.tensor([-7.0])]
    assert match_loss(syn, real, "ours").item() == pytest.approx(3.0, abs=1e-5)
    # mse: (1 + 1) + (25 + 4) + 4 + 81; cos: 1 - (2 + 3 - 1 - 14) / (sqrt(34) sqrt(62))
    assert match_loss(syn, real, "mse").item() == pytest.approx(116.0)
    assert match_loss(syn, real, "cos").item() == pytest.approx(1 + 10 / np.sqrt(34 * 62), abs=1e-5)


def forced_draw(transform: str, batch: int, seed: int = 0) -> D.Draw:
    """A draw of one transform (a one-transform strategy)."""
    return D.draw(transform, batch, 8, 8, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("transform", D.TRANSFORMS)
def test_a_siamese_draw_transforms_every_image_alike_and_is_differentiable(transform):
    x = torch.randn(5, 3, 8, 8, requires_grad=True)
    d = forced_draw(transform, 1)
    assert d.transform == transform and d.shared
    y = D.apply(x, d)
    assert torch.equal(y, D.apply(x, d))  # the same draw, the same transform
    # the real and the synthetic batch of one step: one draw, each image as if alone
    assert torch.allclose(y, torch.cat([D.apply(x[i : i + 1], d) for i in range(5)]), atol=1e-6)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_draws_repeat_under_the_same_generator_state_and_differ_per_image_without_siamese():
    a = D.draw(D.DEFAULT_STRATEGY, 1, 8, 8, torch.Generator().manual_seed(7))
    b = D.draw(D.DEFAULT_STRATEGY, 1, 8, 8, torch.Generator().manual_seed(7))
    assert a.transform == b.transform and all(torch.equal(a.values[k], b.values[k]) for k in a.values)
    x = torch.randn(6, 1, 8, 8)
    assert torch.equal(
        D.diff_augment(x, D.DEFAULT_STRATEGY, torch.Generator().manual_seed(3), siamese=True),
        D.apply(x, D.draw(D.DEFAULT_STRATEGY, 1, 8, 8, torch.Generator().manual_seed(3))),
    )
    per_image = forced_draw("scale", 6)
    assert not per_image.shared and len(per_image.values["scale_x"].unique()) == 6
    assert D.apply(x, None) is x and D.draw("none", 4, 8, 8, torch.Generator()) is None
    with pytest.raises(ValueError, match="unknown transforms"):
        D.parse_strategy("color_blur")


def test_transforms_by_hand():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    shifted = D.apply(x, D.Draw("crop", {"shift_h": torch.tensor([1]), "shift_w": torch.tensor([-1])}))
    expected = torch.zeros(4, 4)
    expected[:3, 1:] = x[0, 0, 1:, :3]  # output (r, c) reads input (r + 1, c - 1); zeros come in
    assert torch.equal(shifted[0, 0], expected)
    cut = D.apply(x, D.Draw("cutout", {"centre_h": torch.tensor([0]), "centre_w": torch.tensor([3])}))  # side 2: rows -1..0, cols 2..3
    mask = torch.ones(4, 4)
    mask[0, 2:] = 0
    assert torch.equal(cut[0, 0], x[0, 0] * mask)
    assert torch.equal(D.apply(x, D.Draw("flip", {"flip": torch.tensor([True])})), x.flip(3))
    assert torch.allclose(D.apply(x, D.Draw("rotate", {"angle": torch.tensor([0.0])})), x, atol=1e-5)
    assert torch.allclose(D.apply(x, D.Draw("scale", {"scale_x": torch.tensor([1.0]), "scale_y": torch.tensor([1.0])})), x, atol=1e-5)
    # color with brightness 0.5 (no shift), saturation 0.5 (x 1 around the channel mean), contrast 0.5 (x 1)
    color = D.Draw("color", {"brightness": torch.tensor([0.5]), "saturation": torch.tensor([0.5]), "contrast": torch.tensor([0.5])})
    assert torch.allclose(D.apply(x.expand(1, 3, 4, 4), color), x.expand(1, 3, 4, 4))


def test_the_synthetic_set_starts_from_real_images_of_its_class_in_the_subset(digits):
    subset = np.arange(0, len(digits.y_train), 3)  # every third training image
    pool = RealPool(digits, subset, CPU)
    images, labels = initial_images(pool, 3, "real", torch.Generator().manual_seed(0))
    assert images.shape == (30, 1, 8, 8) and labels.tolist() == [c for c in range(10) for _ in range(3)]
    everything = digits.normalizer(CPU)(digits.x_train)
    for row, c in zip(images, labels.tolist()):
        match = np.flatnonzero((everything == row).flatten(1).all(1).numpy())
        assert len(match) >= 1 and all(digits.y_train[match] == c)
        assert np.isin(match, subset).any()  # one of the equal images is in the subset
    # no repeats within a class
    assert len(torch.unique(images.flatten(1), dim=0)) == 30
    x, idx = pool.sample(4, 5, torch.Generator().manual_seed(1))
    assert np.isin(idx.numpy(), subset).all() and (digits.y_train[idx] == 4).all() and torch.equal(x, everything[idx])
    with pytest.raises(ValueError, match="fewer in classes"):
        initial_images(RealPool(digits, subset[:20], CPU), 3, "real", torch.Generator())


def test_the_same_seed_gives_the_same_synthetic_set(digits):
    subset = np.arange(len(digits.y_train))
    for method, settings in (
        (distill_dm, {"iterations": 2}),
        (distill_dc, {"iterations": 1, "init": "real", "outer_loop": 2, "inner_loop": 1, "dsa": True}),
    ):
        runs = [method(digits, subset, 2, {**TINY, **settings}, seed, CPU, log=lambda _: None) for seed in (5, 5, 6)]
        assert torch.equal(runs[0]["images"], runs[1]["images"]) and runs[0]["history"] == runs[1]["history"]
        assert not torch.equal(runs[0]["images"], runs[2]["images"])
        assert runs[0]["labels"].dtype == torch.int64 and len(runs[0]["history"]) == settings["iterations"] + 1


def test_the_real_batch_filter_sees_each_class_batch_and_its_choice_is_used(digits):
    subset = np.arange(1, len(digits.y_train), 2)
    seen = []

    def first_four(batch):
        assert (digits.y_train[batch.indices] == batch.cls).all() and np.isin(batch.indices.numpy(), subset).all()
        kept = batch.keep(torch.arange(4))
        seen.append((batch.method, batch.cls, len(batch.images), len(kept.images)))
        return kept

    distill_dm(digits, subset, 1, {**TINY, "iterations": 0, "real_batch_filter": first_four}, 0, CPU)
    distill_dc(digits, subset, 1, {**TINY, "iterations": 0, "real_batch_filter": first_four}, 0, CPU)
    assert seen == [(m, c, 32, 4) for m in ("dm", "dc") for c in range(10)]
    with pytest.raises(ValueError, match="kept no image"):
        distill_dm(
            digits, subset, 1, {**TINY, "iterations": 0, "real_batch_filter": lambda b: b.keep(torch.zeros(len(b.images), dtype=torch.bool))}, 0, CPU
        )


def fixed_problem(digits, n_nets: int = 3):
    """Networks and real batches to compare synthetic sets on, the same for every call."""
    pool = RealPool(digits, np.arange(len(digits.y_train)), CPU)
    gen = torch.Generator().manual_seed(123)
    nets = [fresh_network(pool, {"net_width": 16, "net_depth": 3}, gen) for _ in range(n_nets)]
    batches = [[pool.sample(c, 64, gen)[0] for c in range(10)] for _ in range(n_nets)]
    return nets, batches


def test_dm_lowers_the_embedding_distance_and_moves_the_images(digits):
    out = distill_dm(digits, np.arange(len(digits.y_train)), 1, {**TINY, "iterations": 30, "dsa": False}, 0, CPU)
    start, _ = initial_images(RealPool(digits, np.arange(len(digits.y_train)), CPU), 1, "real", torch.Generator().manual_seed(0))
    nets, batches = fixed_problem(digits)

    def loss(images):
        with torch.no_grad():
            return sum(embedding_match(net, b[c], images[c : c + 1]).item() for net, b in zip(nets, batches) for c in range(10))

    assert (out["images"] - start).abs().max() > 0.1
    assert loss(out["images"]) < 0.8 * loss(start)  # 0.63 when written
    assert np.mean(out["history"][-5:]) < np.mean(out["history"][:5])


def test_dc_lowers_the_gradient_distance_and_moves_the_images(digits):
    out = distill_dc(digits, np.arange(len(digits.y_train)), 1, {**TINY, "iterations": 30, "init": "real"}, 0, CPU)
    start, _ = initial_images(RealPool(digits, np.arange(len(digits.y_train)), CPU), 1, "real", torch.Generator().manual_seed(0))
    nets, batches = fixed_problem(digits)

    def loss(images):
        return sum(gradient_match(net, b[c], images[c : c + 1], c).item() for net, b in zip(nets, batches) for c in range(10))

    assert (out["images"] - start).abs().max() > 0.1
    assert loss(out["images"]) < 0.9 * loss(start)  # 0.78 when written
    assert np.mean(out["history"][-5:]) < np.mean(out["history"][:5])
