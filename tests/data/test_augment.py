import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF

from kdprune.data import PADDING_MODES, Augmentation
from kdprune.data.augment import crop_flip, draw_views


@pytest.mark.parametrize("padding_mode", sorted(PADDING_MODES))
def test_crop_flip_equals_torchvision_random_crop_on_fixed_offsets(padding_mode, monkeypatch):
    """kdprune's batched crop is torchvision's RandomCrop(32, padding=4, padding_mode=...) (DeepCore's
    CIFAR crop, reflect) made to draw the same offsets, then RandomHorizontalFlip where flipped."""
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    top = torch.tensor([0, 8, 4, 3, 8, 0])
    left = torch.tensor([0, 8, 4, 7, 0, 5])
    flip = torch.tensor([False, True, False, True, True, False])
    out = crop_flip(x, top, left, flip, Augmentation(4, True, padding_mode))
    crop = T.RandomCrop(32, padding=4, padding_mode=padding_mode)
    for i in range(6):
        monkeypatch.setattr(T.RandomCrop, "get_params", staticmethod(lambda img, size, i=i: (int(top[i]), int(left[i]), *size)))
        ref = crop(x[i])
        if flip[i]:
            ref = TF.hflip(ref)
        assert torch.equal(out[i], ref), (padding_mode, i)


def test_padding_modes_pad_differently():
    """The border of a corner crop: zeros under constant, mirrored pixels under reflect."""
    x = torch.randint(1, 256, (1, 1, 8, 8), dtype=torch.uint8)
    zero, no = torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.bool)
    constant = crop_flip(x, zero, zero, no, Augmentation(2, False, "constant"))
    reflect = crop_flip(x, zero, zero, no, Augmentation(2, False, "reflect"))
    assert not constant[0, 0, :2].any() and torch.equal(reflect[0, 0, 0, 2:], x[0, 0, 2, :6])


def test_drawn_views_are_deterministic_varied_and_in_range():
    cifar = Augmentation(4, True, "reflect")
    a = draw_views(256, cifar, torch.Generator().manual_seed(3))
    b = draw_views(256, cifar, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    top, left, flip = a
    assert set(top.tolist()) == set(range(9)) and set(left.tolist()) == set(range(9))
    assert 0 < flip.sum() < 256
    assert not draw_views(64, Augmentation(1, False, "reflect"), torch.Generator().manual_seed(0))[2].any()


def test_without_crop_or_flip_every_view_is_the_image():
    """SVHN's augmentation (DeepCore: none): whatever is drawn, the images come back unchanged."""
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    none = Augmentation(0, False, "reflect")
    top, left, flip = draw_views(64, none, torch.Generator().manual_seed(0))
    assert not top.any() and not left.any() and not flip.any()
    assert torch.equal(crop_flip(x, top, left, flip, none), x)


def test_zero_offsets_without_flip_are_the_identity():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    zeros = torch.zeros(5, dtype=torch.int64)
    for mode in PADDING_MODES:
        assert torch.equal(crop_flip(x, zeros + 1, zeros + 1, zeros.bool(), Augmentation(1, True, mode)), x)
