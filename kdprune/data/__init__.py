"""Datasets: a registry of loaders (declared here, implemented in `images` and `folder`) and the
dataset spec strings the config uses. Torch-free: the planning layer reads specs, slugs and
geometry from here.

A dataset spec is `name[:argument][+modifier<value>...]`, e.g. `npz:../shared/data/cifar10_subset.npz`
or `cifar10+noise0.2`. Every loader is `load(data_root, argument, download) -> ImageData`
(kdprune.data.images); a modifier is `modify(data, value) -> data`.

Declaration metadata: `geometry` = (training images, image size, mirrored images are still images
of their class) for cost estimates of data that is not on this machine; `streamed` = read from disk
batch by batch (no view tables, no stacking)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from kdprune.registry import Registry


class DatasetMissing(FileNotFoundError):
    """The files of a dataset are not where they must be; the message says where to put them."""


DATASETS: Registry = Registry("dataset")
DATASETS.declare("digits", "kdprune.data.images:load_digits", geometry=(1_347, 8, False))
DATASETS.declare("npz", "kdprune.data.images:load_npz", needs_argument=True)
DATASETS.declare("cifar10", "kdprune.data.images:load_cifar10", geometry=(50_000, 32, True))
DATASETS.declare("cifar100", "kdprune.data.images:load_cifar100", geometry=(50_000, 32, True))
DATASETS.declare("svhn", "kdprune.data.images:load_svhn", geometry=(73_257, 32, True))
DATASETS.declare("imagenet", "kdprune.data.folder:load_imagenet", geometry=(1_281_167, 224, True), streamed=True)

# Modifiers after a "+" change a loaded dataset: `cifar10+noise0.2` flips 20% of the training labels.
MODIFIERS: Registry = Registry("dataset modifier")
MODIFIERS.declare("noise", "kdprune.data.images:label_noise")


def split_spec(spec: str) -> tuple[str, str, list[tuple[str, float]]]:
    """`name[:argument][+modifier<value>...]` -> (name, argument, [(modifier, value), ...])."""
    base, *mods = spec.split("+")
    name, _, arg = base.partition(":")
    parsed = []
    for mod in mods:
        match = re.fullmatch(r"([a-z_]+)([0-9.]+)", mod)
        if not match:
            raise ValueError(f"dataset modifier {mod!r} must be <name><number>, e.g. noise0.2")
        parsed.append((match[1], float(match[2])))
    return name, arg, parsed


def check_spec(spec: str) -> None:
    """Raise UnknownName/ValueError for a dataset spec no loader can read (no file access)."""
    name, arg, mods = split_spec(spec)
    if DATASETS.meta(name).get("needs_argument") and not arg:
        raise ValueError(f"dataset {name!r} needs a path: {name}:<path>")
    for mod, _ in mods:
        MODIFIERS.meta(mod)


def in_memory(spec: str) -> bool:
    """Whether the dataset is held as tensors (crop + flip drawn by kdprune, teacher views possible)
    rather than streamed from disk by DataLoader workers."""
    return not DATASETS.meta(split_spec(spec)[0]).get("streamed", False)


@functools.cache  # asked for every job's path, thousands of times per parse
def dataset_slug(spec: str) -> str:
    """A path-safe name for a dataset spec: `npz:../x/cifar10_subset.npz` -> `npz-cifar10_subset`."""
    name, arg, mods = split_spec(spec)
    slug = f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(arg).stem)}" if arg else name
    return slug + "".join(f"+{mod}{value:g}" for mod, value in mods)


def label_noise_of(spec: str) -> float:
    return dict(split_spec(spec)[2]).get("noise", 0.0)


def crop_padding(image_size: int) -> int:
    """CIFAR's pad-4 crop, scaled with the image: 32 -> 4, 8x8 digits -> 1."""
    return max(1, image_size // 8)
