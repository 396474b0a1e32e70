import numpy as np
import pytest
import torch

from kdprune.data import Augmentation, DatasetMissing, augmentation_of, check_spec, dataset_slug
from kdprune.data.images import load_dataset


def test_digits_is_a_fixed_grey_split():
    d = load_dataset("digits")
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.x_train.dtype == torch.uint8 and int(d.x_train.max()) == 255
    assert d.num_classes == 10 and d.augmentation == Augmentation(1, False, "reflect")
    assert torch.equal(load_dataset("digits").y_test, d.y_test)
    from sklearn.datasets import load_digits as sklearn_digits  # the same data as scikit-learn's loader

    ref = sklearn_digits()
    assert torch.equal(d.y_train, torch.as_tensor(ref.target[np.arange(1797) % 4 != 0]))
    assert torch.equal(d.x_train[0, 0], torch.as_tensor(np.rint(ref.images[1] * 255 / 16).astype(np.uint8)))


def test_npz_with_the_shared_cifar_subset(cifar_subset):
    d = load_dataset(f"npz:{cifar_subset}")
    assert d.x_train.shape == (5170, 3, 32, 32) and d.x_test.shape == (1017, 3, 32, 32)
    assert d.classes[0] == "airplane" and d.num_classes == 10 and d.augmentation == Augmentation(4, True, "reflect")
    mean, std = d.channel_stats()
    assert 0.4 < mean[0] < 0.55 and 0.2 < std[0] < 0.3  # CIFAR-10's red channel: 0.49, 0.25


def test_npz_generated_nhw_grey(tmp_path):
    path = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 255, (20, 12, 12), dtype=np.uint8),
        y_train=np.arange(20) % 4,
        x_test=rng.integers(0, 255, (8, 12, 12), dtype=np.uint8),
        y_test=np.arange(8) % 4,
    )
    d = load_dataset(f"npz:{path}")
    assert d.x_train.shape == (20, 1, 12, 12) and d.num_classes == 4 and d.classes == ["0", "1", "2", "3"]


def test_missing_npz_says_what_to_provide(tmp_path):
    with pytest.raises(DatasetMissing, match="not found; give the path of an .npz with arrays x_train"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")


def test_npz_missing_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"arrays \['y_train', 'x_test', 'y_test'\] missing"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


@pytest.mark.parametrize("name,folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_missing_cifar_says_where_to_put_it(tmp_path, name, folder):
    with pytest.raises(DatasetMissing) as err:
        load_dataset(name, tmp_path, download=False)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / folder) in msg and "data_root" in msg


def test_cifar10_read_from_data_root(tmp_path, cifar_subset, monkeypatch):
    """The torchvision path on real files: the subset written in CIFAR-10's python format."""
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with np.load(cifar_subset) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]

    def batch(x, y):
        return {"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), "labels": y.tolist()}

    parts = np.array_split(np.arange(len(x_train)), 5)
    for i, idx in enumerate(parts, 1):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(x_train[idx], y_train[idx]), fh)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch(x_test, y_test), fh)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": names}, fh)
    import torchvision.datasets.cifar

    # torchvision checks the md5 sums of the official files; the subset differs: skip only that.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    d = load_dataset("cifar10", tmp_path, download=False)
    assert d.x_train.shape == (5170, 3, 32, 32) and d.classes == names
    assert torch.equal(d.x_train[0], torch.from_numpy(x_train[0].transpose(2, 0, 1).copy()))


def test_specs_and_slugs():
    check_spec("digits")
    check_spec("npz:/x/y.npz")
    with pytest.raises(KeyError, match="allowed: cifar10, cifar100, digits, imagenet, npz"):
        check_spec("svhn2")
    with pytest.raises(ValueError, match="needs a path"):
        check_spec("npz")
    assert dataset_slug("npz:../shared/data/cifar10_subset.npz") == "npz-cifar10_subset"
    assert dataset_slug("cifar100") == "cifar100"


def test_label_noise_modifier_flips_a_fixed_fraction_to_other_classes():
    clean, noisy = load_dataset("digits"), load_dataset("digits+noise0.2")
    changed = clean.y_train != noisy.y_train
    assert changed.sum().item() == round(0.2 * len(clean.y_train))
    assert torch.equal(noisy.y_train, load_dataset("digits+noise0.2").y_train)  # same for every job
    assert torch.equal(clean.y_test, noisy.y_test) and noisy.name == "digits+noise0.2"
    assert dataset_slug("npz:/a/b/sub.npz+noise0.25") == "npz-sub+noise0.25"
    with pytest.raises(KeyError, match="unknown dataset modifier 'blur'"):
        check_spec("digits+blur0.1")


def test_missing_svhn_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetMissing, match=r"train_32x32.mat and test_32x32.mat not found under .*svhn"):
        load_dataset("svhn", tmp_path, download=False)


def test_each_dataset_augments_as_deepcore_does():
    """DeepCore's main.py: CIFAR-10/100 RandomCrop(32, padding=4, padding_mode="reflect") +
    RandomHorizontalFlip; SVHN (and every other in-memory set it has) no augmentation at all."""
    assert augmentation_of("cifar10") == augmentation_of("cifar100+noise0.2") == Augmentation(4, True, "reflect")
    assert augmentation_of("svhn") == Augmentation(0, False, "reflect")  # no flips, no crops
    assert augmentation_of("imagenet") is None  # streamed: RandomResizedCrop + flip as it reads
    zeros = {"padding_mode": "constant", "npz": {"padding": 2, "flip": False}}
    assert augmentation_of("svhn", zeros) == Augmentation(0, False, "constant")
    assert augmentation_of("npz:x.npz", zeros) == Augmentation(2, False, "constant")  # npz: from the config


def test_reflect_padding_wider_than_the_images_is_refused_in_one_line(tmp_path):
    path = tmp_path / "small.npz"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    np.savez(path, x_train=images, y_train=np.arange(6) % 2, x_test=images, y_test=np.arange(6) % 2)
    with pytest.raises(
        ValueError, match=r"^augmentation.padding_mode = 'reflect' is not allowed for dataset npz:.*4-pixel images; allowed: constant"
    ):
        load_dataset(f"npz:{path}")  # the default npz padding, 4, on 4x4 images
    assert load_dataset(f"npz:{path}", augmentation=Augmentation(4, True, "constant")).augmentation.padding_mode == "constant"
