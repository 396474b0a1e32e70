"""The npz dataset file (`dataset: npz:<path>`) and its check, run when the workflow starts (the
config check) and again by the loader: a file the loader cannot use is refused with one line that
names the file, what is wrong and what is allowed, before any job runs.

The format: arrays `x_train`, `x_test` (uint8 images, N x H x W or N x H x W x C, the same image
shape in both), `y_train`, `y_test` (integer labels, one per image, in [0, classes)), and optionally
`classes` (one name per class; without it the classes are 0 .. the largest label). Every class has
at least one training image. No pickled objects (`allow_pickle=False`).

The check reads the arrays' headers (shape and dtype, not their data) and the labels only, so it
costs milliseconds even for a large file; it is cached per file path, size and modification time.
Torch-free (the planning layer calls it); numpy is imported only when an npz dataset is configured."""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
ALLOWED = "an .npz with uint8 images x_train, x_test (N x H x W [x C]) and integer labels y_train, y_test"


def check_npz(arg: str) -> None:
    """Raise ValueError (one line) when `arg` is not a usable npz dataset file."""
    path = Path(arg)
    if not path.is_file():
        raise ValueError(f"dataset npz:{arg}: file {path.resolve()} not found; allowed: the path of {ALLOWED}")
    stat = path.stat()
    _check(str(path.resolve()), stat.st_size, stat.st_mtime_ns, arg)


@functools.cache
def _check(path: str, size: int, mtime_ns: int, arg: str) -> None:
    import numpy as np

    def refuse(what: str) -> ValueError:
        return ValueError(f"dataset npz:{arg}: {what}; allowed: {ALLOWED}")

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise refuse("not an .npz file (not a zip archive of .npy arrays)") from None
    with archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        missing = [key for key in REQUIRED if key not in members]
        if missing:
            raise refuse(f"arrays {missing} missing (found {sorted(members)})")
        try:
            shapes = {key: _header(archive, members[key]) for key in (*REQUIRED, *(["classes"] if "classes" in members else []))}
        except ValueError as err:
            raise refuse(f"an array cannot be read ({err})") from None
        for split in ("train", "test"):
            (x_shape, x_dtype), (y_shape, y_dtype) = shapes[f"x_{split}"], shapes[f"y_{split}"]
            if x_dtype != np.uint8 or len(x_shape) not in (3, 4):
                raise refuse(f"x_{split} is {x_dtype} of shape {x_shape}")
            if y_dtype.kind not in "iu" or len(y_shape) != 1:
                raise refuse(f"y_{split} is {y_dtype} of shape {y_shape}, not a list of integer labels")
            if y_shape[0] != x_shape[0]:
                raise refuse(f"y_{split} has {y_shape[0]} labels for {x_shape[0]} images in x_{split}")
        if "classes" in shapes and (len(shapes["classes"][0]) != 1 or shapes["classes"][1].kind not in "USiu"):
            raise refuse(f"classes is {shapes['classes'][1]} of shape {shapes['classes'][0]}, not a list of names")
        if shapes["x_train"][0][1:] != shapes["x_test"][0][1:]:
            raise refuse(f"training images {shapes['x_train'][0][1:]} and test images {shapes['x_test'][0][1:]} differ in shape")
        with archive.open(members["y_train"]) as f:
            y_train = np.lib.format.read_array(f, allow_pickle=False)
        with archive.open(members["y_test"]) as f:
            y_test = np.lib.format.read_array(f, allow_pickle=False)
    if not len(y_train):
        raise refuse("no training image")
    n_classes = shapes["classes"][0][0] if "classes" in shapes else int(max(y_train.max(), y_test.max(initial=0))) + 1
    for split, y in (("y_train", y_train), ("y_test", y_test)):
        outside = y[(y < 0) | (y >= n_classes)]
        if len(outside):
            raise refuse(f"{split} has label {int(outside[0])} outside [0, {n_classes}) ({len(outside)} such labels)")
    empty = np.flatnonzero(np.bincount(y_train, minlength=n_classes) == 0)
    if len(empty):
        raise refuse(f"class {int(empty[0])} has no training image ({len(empty)} such classes)")


def _header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], object]:
    """(shape, dtype) of an .npy member, from its header alone."""
    import numpy as np

    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype
