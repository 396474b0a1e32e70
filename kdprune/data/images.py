"""Datasets behind a registry. Every dataset becomes uint8 NCHW tensors plus int64 labels, so the
same training loop (and later the GPU-resident fast path) serves digits, npz files and CIFAR.

A dataset spec is `name` or `name:argument` (e.g. `npz:../shared/data/cifar10_subset.npz`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kdprune.data import DATASETS, MODIFIERS, Augmentation, DatasetMissing, augmentation_of, split_spec
from kdprune.data.npz import check_npz


@dataclass
class ImageData:
    name: str
    x_train: torch.Tensor  # uint8, N x C x H x W
    y_train: torch.Tensor  # int64, N
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    augmentation: Augmentation | None = None  # training views; load_dataset sets it, training needs it

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images in [0, 1] units."""
        x = self.x_train.double() / 255.0
        return x.mean(dim=(0, 2, 3)).float(), x.std(dim=(0, 2, 3)).float()

    # The interface the training loop and the scores use (eval_batches, y_train, classes, channels;
    # training batches come from kdprune.train.step.ResidentBatches); a dataset that cannot live in memory
    # (an ImageFolder) provides the same plus its own train_batches.
    def normalizer(self, device: torch.device) -> Normalizer:
        if getattr(self, "_norm", None) is None or self._norm.mean.device != torch.device(device):
            self._norm = Normalizer(self).to(device)
        return self._norm

    def eval_batches(self, split: str, batch_size: int, device: torch.device):
        """Standardised, un-augmented images of `split` ("train" or "test") in order, with labels."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        for i in range(0, len(x), batch_size):
            yield self.normalizer(device)(x[i : i + batch_size].to(device)), y[i : i + batch_size].to(device)


class Normalizer(torch.nn.Module):
    """uint8 images -> float, standardised by the training set's channel mean and std."""

    def __init__(self, data: ImageData):
        super().__init__()
        mean, std = data.channel_stats()
        self.register_buffer("mean", (mean * 255.0).view(1, -1, 1, 1))
        self.register_buffer("std", (std * 255.0).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std


def _from_nhwc(name, x_train, y_train, x_test, y_test, classes) -> ImageData:
    def images(x: np.ndarray) -> torch.Tensor:
        x = np.asarray(x)
        if x.ndim == 3:  # grey images without a channel axis
            x = x[..., None]
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(torch.uint8)

    def labels(y) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y), dtype=torch.int64)

    return ImageData(name, images(x_train), labels(y_train), images(x_test), labels(y_test), [str(c) for c in classes])


def load_digits(data_root: Path, arg: str = "", download: bool = False) -> ImageData:
    """scikit-learn's bundled 8x8 digits (1797 images, shipped with the package, no download).
    Fixed split: every 4th image (index % 4 == 0) is the test set, the rest train.
    Read straight from the package's digits.csv.gz (the file sklearn.datasets.load_digits reads):
    importing scikit-learn would add about a second to every job."""
    import importlib.util

    package_dir = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0])
    table = np.loadtxt(package_dir / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    x = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)  # 0..16 grey levels -> uint8
    y = table[:, -1].astype(np.int64)
    test = np.arange(len(y)) % 4 == 0
    return _from_nhwc("digits", x[~test], y[~test], x[test], y[test], [str(i) for i in range(10)])


def load_npz(data_root: Path, arg: str, download: bool = False) -> ImageData:
    """Any .npz with x_train, y_train, x_test, y_test (uint8 NHWC or NHW images, integer labels)
    and optionally `classes`. A relative path is taken from the working directory."""
    path = Path(arg)
    if not path.is_file():
        raise DatasetMissing(
            f"dataset npz:{arg}: file {path.resolve()} not found; give the path of an .npz with arrays "
            "x_train, y_train, x_test, y_test (uint8 NHWC images, integer labels)"
        )
    check_npz(arg)  # one line for a file the loader cannot use (the workflow ran it before any job too)
    with np.load(path, allow_pickle=False) as f:
        n_classes = int(max(f["y_train"].max(), f["y_test"].max())) + 1
        classes = list(f["classes"]) if "classes" in f.files else [str(i) for i in range(n_classes)]
        return _from_nhwc(f"npz:{arg}", f["x_train"], f["y_train"], f["x_test"], f["y_test"], classes)


def _torchvision_cifar(cls_name: str, folder: str, archive: str):
    def load(data_root: Path, arg: str = "", download: bool = True) -> ImageData:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        root = Path(data_root)
        try:
            train = cls(root, train=True, download=False)
            test = cls(root, train=False, download=False)
        except RuntimeError:
            if not download:
                raise DatasetMissing(_where(cls_name, root, folder, archive)) from None
            try:
                train = cls(root, train=True, download=True)
                test = cls(root, train=False, download=True)
            except Exception as err:  # no network, proxy, disk ...
                raise DatasetMissing(f"{_where(cls_name, root, folder, archive)} (download failed: {err})") from None
        return _from_nhwc(cls_name.lower(), train.data, train.targets, test.data, test.targets, train.classes)

    load.__doc__ = f"torchvision {cls_name}: read from data_root/{folder}, downloaded there when absent."
    return load


def _where(name: str, root: Path, folder: str, archive: str) -> str:
    return (
        f"dataset {name.lower()}: files not found under {root.resolve() / folder}; put the extracted "
        f"{archive} there (data_root in config.yaml sets the folder), or allow the download"
    )


load_cifar10 = _torchvision_cifar("CIFAR10", "cifar-10-batches-py", "cifar-10-python.tar.gz")
load_cifar100 = _torchvision_cifar("CIFAR100", "cifar-100-python", "cifar-100-python.tar.gz")


def load_svhn(data_root: Path, arg: str = "", download: bool = True) -> ImageData:
    """torchvision SVHN (train/test .mat files in data_root/svhn; the `extra` split is not used)."""
    import torchvision.datasets as tvd

    root = Path(data_root) / "svhn"
    try:
        train, test = (tvd.SVHN(root, split=s, download=download) for s in ("train", "test"))
    except Exception as err:  # RuntimeError when absent, network errors when the download fails
        raise DatasetMissing(
            f"dataset svhn: train_32x32.mat and test_32x32.mat not found under {root.resolve()}; "
            f"put them there (data_root in config.yaml sets the folder), or allow the download ({err})"
        ) from None
    nhwc = [d.data.transpose(0, 2, 3, 1) for d in (train, test)]
    return _from_nhwc("svhn", nhwc[0], train.labels, nhwc[1], test.labels, [str(i) for i in range(10)])


def label_noise(data: ImageData, fraction: float) -> ImageData:
    """Symmetric label noise: a fixed random `fraction` of training labels (seed 0, the same for
    every teacher, score and student of the dataset) moves to a different class, uniformly."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"label noise must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(0)
    n = len(data.y_train)
    flip = rng.choice(n, int(round(fraction * n)), replace=False)
    shift = torch.as_tensor(rng.integers(1, data.num_classes, len(flip)))
    data.y_train = data.y_train.clone()
    data.y_train[flip] = (data.y_train[flip] + shift) % data.num_classes
    data.name = f"{data.name}+noise{fraction:g}"
    return data


def load_dataset(spec: str, data_root: str | Path = "data", download: bool = True, augmentation: Augmentation | None = None) -> ImageData:
    """Every loader takes (data_root, argument, download); local ones ignore what they do not need.
    `augmentation`: the training views (a job's spec has them, resolved from the config); None: the
    dataset's declared ones under the schema's defaults (kdprune.data.augmentation_of)."""
    name, arg, mods = split_spec(spec)
    data = DATASETS.get(name)(Path(data_root), arg, download=download)
    for mod, value in mods:
        data = MODIFIERS.get(mod)(data, value)
    augmentation = augmentation or augmentation_of(spec)
    if augmentation is not None:  # streamed datasets augment as they read
        augmentation.check(spec, data.image_size)
        data.augmentation = augmentation
    return data
