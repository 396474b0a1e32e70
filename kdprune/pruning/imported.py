"""A pruning score read from a file instead of computed: e.g. BiLP's released static scores
(silicx/GoldFromOres-BiLP, `drop_utils/resource/CIFAR10_LossInit.json`, `..._LossConverge.json` and
the CIFAR-100 ones: a JSON list of one float per training image, in the order of torchvision's
training set, the order the suite's CIFAR loaders keep), for users who have them.

Settings (config `scores.<method>`): `file`, a JSON list or a .npy array of one number per training
sample in training-set order; `sha256`, the file's SHA-256 (required: which file a result used is
then part of its settings, and a different or damaged file is refused). The values are used as
they are, so the package's convention (higher = harder) must hold for them: BiLP's loss files do
(higher loss); a utility where higher = more useful (BiLP's MonteCarlo) is then kept with the rule
`hardest`. The seed has no effect.

Every refusal is one line naming the setting, its value and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kdprune.files import sha256_of
from kdprune.train.accel import Accel

SUFFIXES = (".json", ".npy")


def _refuse(key: str, value, why: str, allowed: str) -> ValueError:
    return ValueError(f"score imported: {key} = {value!r} is not allowed: {why}; allowed: {allowed}")


def imported_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    """The scores in `settings["file"]` (checked against `settings["sha256"]` and the training set's size)."""
    name, expected = settings.get("file"), settings.get("sha256")
    if not name:
        raise _refuse("file", name, "no file given", "the path of a .json list or .npy array of one score per training sample")
    path = Path(name)
    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        why = "no such file" if not path.is_file() else f"unknown file type {path.suffix!r}"
        raise _refuse("file", name, why, "the path of an existing .json list or .npy array")
    if not isinstance(expected, str) or len(expected) != 64 or any(ch not in "0123456789abcdef" for ch in expected.lower()):
        raise _refuse("sha256", expected, "a checksum of the file is required", "its SHA-256 as 64 hexadecimal digits (sha256sum FILE)")
    actual = sha256_of(path)
    if actual != expected.lower():
        raise _refuse("sha256", expected, f"{name} has sha256 {actual}", "the checksum of the file to be read")
    try:
        content = json.loads(path.read_text()) if path.suffix.lower() == ".json" else np.load(path, allow_pickle=False)
        values = np.asarray(content, dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise _refuse("file", name, f"not a list of numbers ({type(err).__name__})", "a .json list or .npy array of numbers") from None
    n = len(data.y_train)
    if values.shape != (n,):
        raise _refuse(
            "file",
            name,
            f"it holds scores of shape {values.shape}, the training set of {data.name} has {n} samples",
            f"one score per training sample ({n})",
        )
    if not np.isfinite(values).all():
        raise _refuse("file", name, f"{int((~np.isfinite(values)).sum())} of its scores are not finite", "finite numbers")
    log(f"[score imported] {n} scores from {name} (sha256 {actual[:12]})")
    return values
