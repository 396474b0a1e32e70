import torch
import torchvision.transforms.functional as TF

from kdprune.augment import crop_flip, random_crop_flip


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


def test_random_crop_flip_is_deterministic_and_varied():
    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    a = random_crop_flip(x, 1, torch.Generator().manual_seed(3))
    b = random_crop_flip(x, 1, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(random_crop_flip(x, 0, torch.Generator().manual_seed(0), hflip=False), x)
