import torch
import torchvision.transforms.functional as TF

from kdprune.data.augment import crop_flip, draw_views


def test_crop_flip_equals_torchvision_on_fixed_offsets():
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    top = torch.tensor([0, 8, 4, 3, 8, 0])
    left = torch.tensor([0, 8, 4, 7, 0, 5])
    flip = torch.tensor([False, True, False, True, True, False])
    out = crop_flip(x, top, left, flip, padding=4)
    for i in range(6):
        ref = TF.crop(TF.pad(x[i], [4]), int(top[i]), int(left[i]), 32, 32)  # RandomCrop(32, padding=4)
        if flip[i]:
            ref = TF.hflip(ref)
        assert torch.equal(out[i], ref), i


def test_drawn_views_are_deterministic_varied_and_in_range():
    a = draw_views(256, 4, torch.Generator().manual_seed(3))
    b = draw_views(256, 4, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    top, left, flip = a
    assert set(top.tolist()) == set(range(9)) and set(left.tolist()) == set(range(9))
    assert 0 < flip.sum() < 256
    assert not draw_views(64, 1, torch.Generator().manual_seed(0), hflip=False)[2].any()


def test_zero_offsets_without_flip_are_the_identity():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    zeros = torch.zeros(5, dtype=torch.int64)
    assert torch.equal(crop_flip(x, zeros + 1, zeros + 1, zeros.bool(), padding=1), x)
