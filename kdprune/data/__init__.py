"""Datasets: a registry of loaders (declared here, implemented in `images` and `folder`) and the
dataset spec strings the config uses. Torch-free: the planning layer reads specs, slugs and
geometry from here.

A dataset spec is `name[:argument][+modifier<value>...]`, e.g. `npz:../shared/data/cifar10_subset.npz`
or `cifar10+noise0.2`. Every loader is `load(data_root, argument, download) -> ImageData`
(kdprune.data.images); a modifier is `modify(data, value) -> data`.

Declaration metadata: `geometry` = (training images, image size) for cost estimates of data that is
not on this machine; `augmentation` = the training augmentation of an in-memory dataset, {padding:
crop padding in pixels (0: no crop), flip: random horizontal flips} (see `Augmentation`); `streamed`
= read from disk batch by batch, augmented as it is read (no view tables, no stacking); `check` =
"module:function" that checks the spec's file when the workflow starts (one ValueError line)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from kdprune.registry import Registry, import_target


class DatasetMissing(FileNotFoundError):
    """The files of a dataset are not where they must be; the message says where to put them."""


DATASETS: Registry = Registry("dataset")
# Augmentation: DeepCore's main.py (PatrickZH/DeepCore, the P1 recipe) augments CIFAR-10/100 with
# RandomCrop(32, padding=4, padding_mode="reflect") + RandomHorizontalFlip, and nothing else (SVHN:
# no crop, no flip). Digits: CIFAR's pad-4 scaled to 8x8 images, no flip (a mirrored 2 is no digit).
# A file (npz:) says nothing about its images: its augmentation is the config's augmentation.npz.
DATASETS.declare("digits", "kdprune.data.images:load_digits", geometry=(1_347, 8), augmentation={"padding": 1, "flip": False})
DATASETS.declare("npz", "kdprune.data.images:load_npz", needs_argument=True, check="kdprune.data.npz:check_npz")
DATASETS.declare("cifar10", "kdprune.data.images:load_cifar10", geometry=(50_000, 32), augmentation={"padding": 4, "flip": True})
DATASETS.declare("cifar100", "kdprune.data.images:load_cifar100", geometry=(50_000, 32), augmentation={"padding": 4, "flip": True})
DATASETS.declare("svhn", "kdprune.data.images:load_svhn", geometry=(73_257, 32), augmentation={"padding": 0, "flip": False})
DATASETS.declare("imagenet", "kdprune.data.folder:load_imagenet", geometry=(1_281_167, 224), streamed=True)  # RandomResizedCrop + flip (folder.py)

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


def check_dataset(spec: str) -> None:
    """check_spec, then the dataset's own file check (`check` metadata: an npz's arrays and labels)."""
    check_spec(spec)
    name, arg, _ = split_spec(spec)
    check = DATASETS.meta(name).get("check")
    if check:
        import_target(check)(arg)


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


# torchvision's padding_mode names (RandomCrop) -> torch.nn.functional.pad's modes.
PADDING_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}


@dataclass(frozen=True)
class Augmentation:
    """The training augmentation of an in-memory dataset: a random crop of the image padded by
    `padding` pixels on every side (0: no crop), as torchvision's RandomCrop(size, padding,
    padding_mode=`padding_mode`) draws it ("constant" pads with zeros), then a random horizontal flip
    when `flip`. Teachers, scores and students train on these views; a teacher's view table holds
    one logit vector per (crop offset, flip)."""

    padding: int
    flip: bool
    padding_mode: str

    @property
    def view_grid(self) -> tuple[int, int]:
        """(crop offsets per axis, flips): the shape of a view table's view axes."""
        return 2 * self.padding + 1, 2 if self.flip else 1

    @property
    def views(self) -> int:
        offsets, flips = self.view_grid
        return offsets * offsets * flips

    def check(self, dataset: str, image_size: int) -> None:
        """Reflection cannot pad by as much as the image is wide (torch and torchvision refuse)."""
        if self.padding_mode == "reflect" and self.padding >= image_size:
            raise ValueError(
                f"augmentation.padding_mode = 'reflect' is not allowed for dataset {dataset}: its crop padding ({self.padding}) "
                f"must be smaller than its {image_size}-pixel images; allowed: constant, edge, or a smaller padding"
            )


def augmentation_of(spec: str, settings: dict | None = None) -> Augmentation | None:
    """The training augmentation of a dataset spec: the crop padding and flip its registry entry
    declares (a dataset without a declaration, i.e. npz: files, reads `settings[name]`), padded as
    `settings["padding_mode"]` says. `settings` is the config's `augmentation` (None: its schema
    defaults). None for streamed datasets, which augment as they read (kdprune.data.folder)."""
    name = split_spec(spec)[0]
    meta = DATASETS.meta(name)
    if meta.get("streamed"):
        return None
    if settings is None:
        from kdprune.plan.config import schema_default  # here: the planning layer imports this module

        settings = schema_default("augmentation")
    declared = meta.get("augmentation") or settings[name]
    return Augmentation(declared["padding"], declared["flip"], settings["padding_mode"])
