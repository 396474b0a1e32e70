"""Safe loading (issue #17): every file the suite reads back (a run's model, a training checkpoint,
a teacher's view table, a score file) is loaded without running code. A pickle that would run code
is refused with one line and never executed; a training checkpoint that cannot be loaded (foreign,
truncated) is ignored with a log line and training starts afresh."""

from pathlib import Path

import numpy as np
import pytest
import torch

from kdprune.data import Augmentation
from kdprune.files import load_torch, save_torch
from kdprune.jobs.runners import _read_scores, load_teacher
from kdprune.train.views import load_view_logits

MARKER = Path("/tmp/kdprune-safe-loading-marker")


class Payload:
    """Unpickling this calls Path.touch(MARKER): what an attacker's file would do."""

    def __reduce__(self):
        return (Path.touch, (MARKER,))


@pytest.fixture
def malicious(tmp_path) -> Path:
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "model.pt"
    torch.save({"arch": "resnet8", "state_dict": {}, "x": Payload()}, path)
    return path


def test_the_malicious_file_would_run_code_if_loaded_unsafely(malicious):
    """The control: the payload is real (an unsafe load runs it)."""
    torch.load(malicious, weights_only=False)
    assert MARKER.exists()
    MARKER.unlink()


@pytest.mark.parametrize(
    "load",
    [load_torch, load_teacher, lambda p: load_view_logits(p, torch.device("cpu"), Augmentation(padding=4, flip=True, padding_mode="reflect"))],
    ids=["load_torch", "load_teacher", "load_view_logits"],
)
def test_every_torch_loader_refuses_code_with_one_line(malicious, load):
    with pytest.raises(ValueError) as err:
        load(malicious)
    assert "refused to load" in str(err.value) and "\n" not in str(err.value)
    assert not MARKER.exists()


def test_a_training_checkpoint_that_cannot_be_loaded_is_ignored_not_run(malicious, tmp_path):
    from kdprune.data.images import load_dataset
    from kdprune.losses import make_loss
    from kdprune.models import create_model
    from kdprune.train.loop import Recipe, fit

    digits = load_dataset("digits")
    truncated = tmp_path / "truncated.pt"
    save_torch(truncated, {"model": create_model("resnet8", 10, 1).state_dict(), "epoch": 1})
    truncated.write_bytes(truncated.read_bytes()[:1000])
    for checkpoint in (malicious, truncated):
        logs = []
        torch.manual_seed(0)
        result = fit(
            create_model("resnet8", 10, 1),
            digits,
            np.arange(200),
            Recipe(epochs=1, batch_size=64, lr=0.05),
            make_loss("ce"),
            seed=0,
            checkpoint=checkpoint,
            device=torch.device("cpu"),
            run_hash="h",
            log=logs.append,
        )
        assert result["epochs"] == 1 and any(f"ignoring {checkpoint}: " in line and "refused to load" in line for line in logs)
    assert not MARKER.exists()


def test_a_score_file_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "scores.npz"
    np.savez(path, scores=np.array([Payload()], dtype=object), labels=np.zeros(1))
    with pytest.raises(ValueError, match="allow_pickle"):
        _read_scores(path)
    assert not MARKER.exists()
