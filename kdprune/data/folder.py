"""Datasets too large for memory, read image by image from a torchvision ImageFolder tree
(`root/train/<class>/*.JPEG`, `root/val/<class>/*.JPEG`) through a torch DataLoader.

`FolderData` offers the interface of `kdprune.data.ImageData` that the training loop and the scores
use (`y_train`, `classes`, `num_classes`, `channels`, `name`, `train_batches`, `eval_batches`), so
`kdprune.train.loop.fit` runs on it unchanged. Augmentation is the standard ImageNet recipe
(RandomResizedCrop + horizontal flip; evaluation: Resize + CenterCrop), standardised with the
ImageNet channel mean and std. Each training image draws its crop and flip from its own generator,
seeded from the epoch's generator and its position in the epoch, so a seed and an epoch give the
same batches whatever the number of workers and whichever worker loads which batch.

Workers hand over uint8 images (4x less to copy and pin than float); the division by 255 and the
standardisation happen on the device, which equals ToTensor + Normalize up to float rounding.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kdprune.data import DatasetMissing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_workers(cap: int = 8) -> int:
    """Loader processes: the CPUs this process may use (a Slurm allocation, not the node), at most `cap`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(cap, cpus))


class _PathTable:
    """Image paths packed into one byte array plus offsets: DataLoader workers that read a list of
    1.3 M Python strings touch their reference counts and copy every page of it (copy-on-read)."""

    def __init__(self, root: str, paths: list[str]):
        self.root = root
        prefix = os.path.join(root, "")
        encoded = [(p[len(prefix) :] if p.startswith(prefix) else os.path.relpath(p, root)).encode() for p in paths]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=self.offsets[1:])
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return os.path.join(self.root, self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes().decode())


def _load_rgb(path: str):
    from PIL import Image

    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def _to_uint8_chw(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def random_resized_crop_box(width: int, height: int, gen: torch.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop covering a uniform `scale` fraction of the area with a log-uniform
    aspect `ratio`, drawn from `gen`: the distribution of torchvision's RandomResizedCrop
    (10 tries, then the largest central crop within the ratio range)."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_lo + (log_hi - log_lo) * u[1])
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(u[2] * (height - h + 1)), height - h)
            left = min(int(u[3] * (width - w + 1)), width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class _TrainView(Dataset):
    """Position p of one epoch's `order` -> (augmented uint8 image of sample order[p], order[p]).
    The augmentation generator is seeded from (epoch seed, p)."""

    def __init__(self, paths: _PathTable, order: np.ndarray, seed: int, crop: int):
        self.paths, self.order, self.seed, self.crop = paths, order, seed, crop

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, pos: int):
        from torchvision.transforms import functional as TF  # here: importing kdprune.data.images stays light

        index = int(self.order[pos])
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + pos) % (2**63))
        img = _load_rgb(self.paths[index])
        top, left, h, w = random_resized_crop_box(img.width, img.height, gen)
        img = TF.resized_crop(img, top, left, h, w, [self.crop, self.crop], TF.InterpolationMode.BILINEAR, antialias=True)
        if torch.rand(1, generator=gen).item() < 0.5:
            img = TF.hflip(img)
        return _to_uint8_chw(img), index


class _EvalView(Dataset):
    """Sample i -> (uint8 image resized (shorter side `resize`) and centre-cropped to `crop`, i)."""

    def __init__(self, paths: _PathTable, resize: int, crop: int):
        self.paths, self.resize, self.crop = paths, resize, crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from torchvision.transforms import functional as TF

        img = _load_rgb(self.paths[index])
        img = TF.resize(img, [self.resize], TF.InterpolationMode.BILINEAR, antialias=True)  # shorter side
        img = TF.center_crop(img, [self.crop, self.crop])
        return _to_uint8_chw(img), index


def _seed_worker(worker_id: int) -> None:
    # torch seeds its own and Python's RNG in each worker from the loader's generator; numpy too,
    # for transforms added later that use it.
    np.random.seed(torch.initial_seed() % 2**32)
    random.seed(torch.initial_seed())


class FolderData:
    """An ImageFolder dataset read from disk batch by batch (see the module docstring)."""

    crop_size: int = 224
    resize_size: int = 256
    channels: int = 3

    def __init__(self, name: str, root: Path, *, crop_size: int | None = None, resize_size: int | None = None, num_workers: int | None = None):
        from torchvision.datasets import ImageFolder
        from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

        self.name = name
        self.root = Path(root)
        self.crop_size = crop_size or type(self).crop_size
        if resize_size is None:  # the 256/224 ratio of the ImageNet recipe, for any crop size
            resize_size = round(type(self).resize_size * self.crop_size / type(self).crop_size)
        self.resize_size = max(self.crop_size, resize_size)
        self.num_workers = default_workers() if num_workers is None else num_workers
        train = ImageFolder(str(self.root / "train"))
        self.classes: list[str] = list(train.classes)
        class_to_idx = train.class_to_idx
        extra = sorted(d.name for d in os.scandir(self.root / "val") if d.is_dir() and d.name not in class_to_idx)
        if extra:
            raise DatasetMissing(
                f"dataset {name}: class folders {extra[:5]} in {self.root / 'val'} are not in "
                f"{self.root / 'train'}; val/ must use the class folder names of train/"
            )
        val = make_dataset(str(self.root / "val"), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        if not val:
            raise DatasetMissing(
                f"dataset {name}: no images in class folders under {self.root / 'val'}; "
                "sort the validation images into val/<class>/ (ImageFolder layout)"
            )
        self.y_train = torch.as_tensor(train.targets, dtype=torch.int64)
        self.y_test = torch.as_tensor([t for _, t in val], dtype=torch.int64)
        self._train_paths = _PathTable(str(self.root / "train"), [p for p, _ in train.samples])
        self._test_paths = _PathTable(str(self.root / "val"), [p for p, _ in val])
        self._stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.crop_size

    def _standardise(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._stats:
            mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255.0
            std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255.0
            self._stats[key] = (mean, std)
        mean, std = self._stats[key]
        return (x.to(device, non_blocking=True).float() - mean) / std

    def _loader(self, dataset: Dataset, device: torch.device, **kwargs) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            dataset,
            num_workers=workers,
            pin_memory=torch.device(device).type == "cuda",
            persistent_workers=False,
            worker_init_fn=_seed_worker if workers > 0 else None,
            **kwargs,
        )

    def train_batches(self, order: torch.Tensor, batches: list[slice], gen: torch.Generator, device: torch.device):
        """For each slice of `order`: (sample indices, augmented standardised images, labels) on
        `device`. The epoch's augmentation seed is drawn from `gen`."""
        device = torch.device(device)
        seed = int(torch.randint(2**31, (1,), generator=gen))
        order_np = torch.as_tensor(order, dtype=torch.int64).cpu().numpy()
        positions = range(len(order_np))
        batch_sampler = [list(positions[part]) for part in batches]
        view = _TrainView(self._train_paths, order_np, seed, self.crop_size)
        loader_gen = torch.Generator().manual_seed(seed)
        for x, idx in self._loader(view, device, batch_sampler=batch_sampler, generator=loader_gen):
            # labels from y_train, not the folder: a dataset modifier (label noise) may change them
            yield idx, self._standardise(x, device), self.y_train[idx].to(device, non_blocking=True)

    def eval_batches(self, split: str, batch_size: int, device: torch.device):
        """Standardised, un-augmented (Resize + CenterCrop) images of `split` ("train" or "test") in
        order, with labels."""
        device = torch.device(device)
        paths, y = (self._train_paths, self.y_train) if split == "train" else (self._test_paths, self.y_test)
        view = _EvalView(paths, self.resize_size, self.crop_size)
        for x, idx in self._loader(view, device, batch_size=batch_size, shuffle=False):
            yield self._standardise(x, device), y[idx].to(device, non_blocking=True)


def _imagenet_missing(root: Path, what: str) -> DatasetMissing:
    return DatasetMissing(
        f"dataset imagenet: {what} under {root.resolve()}; put ImageNet there as train/<class>/*.JPEG and "
        "val/<class>/*.JPEG (torchvision ImageFolder layout, validation images sorted into class folders), "
        "or name another root as imagenet:/path/to/root (it is never downloaded)"
    )


def load_imagenet(
    data_root: Path,
    arg: str = "",
    download: bool = False,
    *,
    crop_size: int | None = None,
    resize_size: int | None = None,
    num_workers: int | None = None,
) -> FolderData:
    """ImageNet (or any ImageFolder tree) from data_root/imagenet, or from the folder given as
    `imagenet:<path>` (relative to the working directory). `download` is ignored: ImageNet needs a
    licence, so its files must already be there."""
    root = Path(arg) if arg else Path(data_root) / "imagenet"
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise _imagenet_missing(root, f"folder {split}/ not found")
    name = f"imagenet:{arg}" if arg else "imagenet"
    try:
        return FolderData(name, root, crop_size=crop_size, resize_size=resize_size, num_workers=num_workers)
    except DatasetMissing:
        raise
    except FileNotFoundError as err:  # ImageFolder: no class folders, or a class folder without images
        raise _imagenet_missing(root, f"no usable images ({str(err).splitlines()[0]})") from None
