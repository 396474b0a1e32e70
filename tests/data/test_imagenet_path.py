"""The ImageNet path on a tiny generated ImageFolder: the folder dataset (read from disk through a
DataLoader), torchvision's ResNets, and one epoch of the unchanged training loop on them."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdprune.data import DatasetMissing
from kdprune.data.folder import IMAGENET_MEAN, IMAGENET_STD, FolderData, load_imagenet, random_resized_crop_box
from kdprune.data.images import load_dataset
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.loop import Recipe, _batches, fit

CLASSES = ["n01", "n02", "n03"]
N_TRAIN, N_VAL = 6, 2
CROP, RESIZE = 32, 36


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """root/{train,val}/<class>/ with random 40x48 (w x h) images, JPEG and PNG, one colour cast per class."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 160, (48, 40, 3), dtype=np.uint8)
                pixels[..., c] += 95  # learnable: class c is brighter in channel c
                ext = "JPEG" if i % 2 == 0 else "png"
                Image.fromarray(pixels).save(root / split / name / f"{name}_{i}.{ext}")
    return root


def small(folder: Path, workers: int = 0) -> FolderData:
    return load_imagenet(Path("unused"), str(folder), crop_size=CROP, resize_size=RESIZE, num_workers=workers)


def test_loader_reads_the_folder(folder, tmp_path):
    data = small(folder)
    assert data.classes == CLASSES and data.num_classes == 3 and data.channels == 3
    assert data.y_train.dtype == torch.int64
    assert data.y_train.tolist() == [c for c in range(3) for _ in range(N_TRAIN)]  # ImageFolder order
    assert data.y_test.tolist() == [c for c in range(3) for _ in range(N_VAL)]
    # through the registry: data_root/imagenet by default, the argument names another root
    (tmp_path / "imagenet").symlink_to(folder, target_is_directory=True)
    default = load_dataset("imagenet", tmp_path, download=False)
    assert default.name == "imagenet" and torch.equal(default.y_train, data.y_train)
    assert load_dataset(f"imagenet:{folder}").name == f"imagenet:{folder}"
    assert load_dataset(f"imagenet:{folder}+noise0.5").y_train.ne(data.y_train).sum() == 9


def test_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(DatasetMissing) as err:
        load_dataset("imagenet", tmp_path, download=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert str((tmp_path / "imagenet").resolve()) in msg and "train/<class>/*.JPEG" in msg and "imagenet:/path/to/root" in msg
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    (tmp_path / "imagenet" / "val").mkdir()
    with pytest.raises(DatasetMissing, match="no usable images"):  # the folders exist but hold no classes
        load_dataset("imagenet", tmp_path)


def collect(data: FolderData, order, batches, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return list(data.train_batches(order, batches, gen, torch.device("cpu")))


def test_train_batches_are_the_slices_and_deterministic(folder):
    data = small(folder, workers=2)
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(1))[:13]
    batches = _batches(len(order), 4)  # 4, 4, 5: a trailing single sample folds into the last batch
    out = collect(data, order, batches, seed=7)
    assert [len(idx) for idx, _, _ in out] == [4, 4, 5]
    for (idx, x, y), part in zip(out, batches):
        assert torch.equal(idx, order[part])
        assert torch.equal(y, data.y_train[idx])
        assert x.shape == (len(idx), 3, CROP, CROP) and x.dtype == torch.float32
    x_all = torch.cat([x for _, x, _ in out])
    lo = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    hi = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert (x_all.amin(dim=(0, 2, 3)) >= lo - 1e-5).all() and (x_all.amax(dim=(0, 2, 3)) <= hi + 1e-5).all()

    again = collect(data, order, batches, seed=7)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(out, again))
    data.num_workers = 0  # the crops do not depend on the workers: each image has its own generator
    in_process = collect(data, order, batches, seed=7)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(out, in_process))
    other = collect(data, order, batches, seed=8)
    assert not torch.equal(x_all, torch.cat([x for _, x, _ in other]))


def test_eval_batches_in_order_unaugmented(folder):
    data = small(folder)
    for split, y in (("train", data.y_train), ("test", data.y_test)):
        out = list(data.eval_batches(split, 4, torch.device("cpu")))
        assert torch.equal(torch.cat([b for _, b in out]), y)
        assert all(x.shape[1:] == (3, CROP, CROP) for x, _ in out)
        again = torch.cat([x for x, _ in data.eval_batches(split, 5, torch.device("cpu"))])
        assert torch.equal(torch.cat([x for x, _ in out]), again)  # no randomness, any batch size
    # the first training image: resized to shorter side 36 (40x48 -> 36x43), centre crop 32x32
    img = Image.open(sorted((folder / "train" / CLASSES[0]).iterdir())[0]).convert("RGB").resize((36, 43), Image.BILINEAR)
    expected = torch.from_numpy(np.array(img.crop((2, 6, 34, 38)))).permute(2, 0, 1).float() / 255.0
    expected = (expected - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    first = next(iter(data.eval_batches("train", 1, torch.device("cpu"))))[0][0]
    assert torch.allclose(first, expected, atol=1e-4)


def test_random_resized_crop_box_stays_inside():
    gen = torch.Generator().manual_seed(0)
    for w, h in ((40, 48), (500, 375), (10, 300)):
        for _ in range(50):
            top, left, ch, cw = random_resized_crop_box(w, h, gen)
            assert 0 <= top and 0 <= left and 0 < ch and 0 < cw and top + ch <= h and left + cw <= w


@pytest.mark.parametrize("arch", ["tv_resnet18", "tv_resnet34", "tv_resnet50"])
def test_torchvision_resnets(arch):
    import torchvision.models as tvm

    for channels in (1, 3):
        model = create_model(arch, num_classes=5, in_channels=channels).eval()
        x = torch.randn(2, channels, 32, 32)
        with torch.no_grad():
            feats = model.features(x)
            assert model(x).shape == (2, 5)
            assert torch.allclose(model.fc(feats), model(x))
        assert feats.shape == (2, model.fc.in_features) and model.conv1.in_channels == channels
    reference = getattr(tvm, arch.removeprefix("tv_"))(weights=None, num_classes=5).state_dict()
    mine = model.state_dict()  # the 3-channel one: torchvision's names and shapes
    assert list(mine) == list(reference) and all(mine[k].shape == reference[k].shape for k in mine)


def test_fit_one_epoch_on_the_folder(folder):
    torch.manual_seed(0)
    data = small(folder, workers=2)
    model = create_model("tv_resnet18", data.num_classes, data.channels)
    result = fit(
        model,
        data,
        np.arange(len(data.y_train)),
        Recipe(epochs=1, batch_size=4),
        make_loss("ce"),
        seed=0,
        device=torch.device("cpu"),
        log=lambda _: None,
    )
    loss = result["history"][-1]["loss"]
    assert math.isfinite(loss) and 0.0 <= result["final_acc"] <= 1.0
    assert result["n_train"] == 18 and result["epochs"] == 1
