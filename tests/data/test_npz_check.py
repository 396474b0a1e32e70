"""A bad npz dataset file is refused with one line when the workflow starts (the config check,
before any job) and by the loader (issue #17): missing, not an npz, arrays missing, wrong dtypes or
shapes, labels and images of different lengths, labels outside the classes, a class without a
training image, pickled objects."""

import numpy as np
import pytest

from kdprune.data.images import load_dataset
from kdprune.plan.config import ROOT, ConfigError, load


def good(n: int = 12, classes: int = 3) -> dict:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 255, (n, 6, 6, 3), dtype=np.uint8),
        "y_train": np.arange(n) % classes,
        "x_test": rng.integers(0, 255, (4, 6, 6, 3), dtype=np.uint8),
        "y_test": np.arange(4) % classes,
    }


BAD = {
    "label outside the classes": (
        {**good(), "classes": np.array(["a", "b", "c"]), "y_train": np.r_[np.arange(11) % 3, 7]},
        "y_train has label 7 outside [0, 3)",
    ),
    "negative label": ({**good(), "y_test": np.array([0, 1, -1, 2])}, "y_test has label -1 outside [0, 3)"),
    "fewer labels than images": ({**good(), "y_train": (np.arange(7) % 3)}, "y_train has 7 labels for 12 images in x_train"),
    "float images": ({**good(), "x_train": np.zeros((12, 6, 6, 3), np.float32)}, "x_train is float32 of shape (12, 6, 6, 3)"),
    "flat images": ({**good(), "x_test": np.zeros((4, 108), np.uint8)}, "x_test is uint8 of shape (4, 108)"),
    "float labels": ({**good(), "y_train": np.zeros(12)}, "y_train is float64 of shape (12,), not a list of integer labels"),
    "array missing": ({k: v for k, v in good().items() if k != "y_test"}, "arrays ['y_test'] missing"),
    "empty class": ({**good(), "classes": np.array(["a", "b", "c", "d"])}, "class 3 has no training image"),
    "other image shapes": ({**good(), "x_test": np.zeros((4, 5, 5, 3), np.uint8)}, "training images (6, 6, 3) and test images (5, 5, 3) differ"),
    "pickled classes": ({**good(), "classes": np.array([object(), "b", "c"], dtype=object)}, "classes is object of shape (3,)"),
}


def write(tmp_path, arrays: dict):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def config_error(spec: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(ROOT / "config.yaml", {"dataset": spec})
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("case", BAD)
def test_a_bad_npz_is_refused_with_one_line_before_any_job_and_by_the_loader(tmp_path, case):
    arrays, what = BAD[case]
    path = write(tmp_path, arrays)
    message = config_error(f"npz:{path}")
    assert message.startswith(f"config: dataset = 'npz:{path}' is not allowed: dataset npz:{path}: ") and what in message, message
    assert "allowed: an .npz with uint8 images" in message
    with pytest.raises(ValueError, match="^dataset npz:") as err:
        load_dataset(f"npz:{path}")
    assert what in str(err.value) and "\n" not in str(err.value)


def test_a_missing_or_foreign_file_is_refused_before_any_job(tmp_path):
    assert "not found; allowed: the path of an .npz" in config_error(f"npz:{tmp_path / 'absent.npz'}")
    text = tmp_path / "notes.npz"
    text.write_text("these are not arrays")
    assert "not an .npz file (not a zip archive of .npy arrays)" in config_error(f"npz:{text}")


def test_a_good_npz_passes_and_loads(tmp_path):
    path = write(tmp_path, {**good(), "classes": np.array(["a", "b", "c"])})
    cfg = load(ROOT / "config.yaml", {"dataset": f"npz:{path}"})
    assert cfg["dataset"] == f"npz:{path}"
    d = load_dataset(f"npz:{path}")
    assert d.x_train.shape == (12, 3, 6, 6) and d.classes == ["a", "b", "c"]
