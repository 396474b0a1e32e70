"""Checksummed training checkpoints (issue #17): a checkpoint written by a real run and then damaged
(a flipped byte, a truncated file, its checksum file deleted) is ignored with one log line, never
loaded, and the rerun ends exactly as an uninterrupted run (CPU: deterministic). Faults injected: 3."""

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.files import checksum_path, load_torch
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.loop import Recipe, fit, seed_everything

CPU = torch.device("cpu")
SUBSET = np.arange(0, 1347, 2)
TIMES = {"train_seconds", "epoch_seconds", "train_images_per_s"}  # wall clock: differs from run to run

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def train(data, checkpoint=None, stop=None, logs=None):
    seed_everything(5, CPU)
    model = create_model("resnet8", 10, 1)
    recipe = Recipe(epochs=4, batch_size=64, lr=0.05, schedule="cosine")
    log = logs.append if logs is not None else lambda m: None
    result = fit(model, data, SUBSET, recipe, make_loss("ce"), seed=5, device=CPU, checkpoint=checkpoint, run_hash="h", stop_epoch=stop, log=log)
    return model, result


def same_run(a: tuple, b: tuple) -> bool:
    """Equal weights, and equal metrics but for wall-clock times."""
    (model_a, ra), (model_b, rb) = a, b
    untimed = [{k: v for k, v in h.items() if k not in TIMES} for h in ra["history"]]
    untimed_b = [{k: v for k, v in h.items() if k not in TIMES} for h in rb["history"]]
    weights = all(torch.equal(x, y) for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    return weights and untimed == untimed_b and ra["final_acc"] == rb["final_acc"] and ra["sample_steps"] == rb["sample_steps"]


@pytest.fixture(scope="module")
def uninterrupted(digits):
    return train(digits)


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the tensor data: torch alone would load it without noticing
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def delete_sidecar(path):
    checksum_path(path).unlink()


FAULTS = {"a flipped byte": flip_a_byte, "a truncated file": truncate, "no checksum file": delete_sidecar}
WHY = {"a flipped byte": "differs from the recorded", "a truncated file": "differs from the recorded", "no checksum file": "is missing"}


def test_a_checkpoint_carries_its_checksum_and_an_intact_one_is_resumed(digits, uninterrupted, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    train(digits, ckpt, stop=2)  # "killed" after epoch 2
    assert checksum_path(ckpt).is_file() and load_torch(ckpt, checksum=True)["epoch"] == 2
    logs = []
    resumed = train(digits, ckpt, logs=logs)
    assert [line for line in logs if "resuming" in line or "ignoring" in line] == [f"[train] resuming from {ckpt} at epoch 2"]
    assert same_run(resumed, uninterrupted)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_checkpoint_is_ignored_with_one_line_and_the_run_ends_as_an_uninterrupted_one(digits, uninterrupted, tmp_path, fault):
    ckpt = tmp_path / "checkpoint.pt"
    train(digits, ckpt, stop=2)
    FAULTS[fault](ckpt)
    if fault == "a flipped byte":  # what the checksum is for: the file still unpickles
        assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    logs = []
    rerun = train(digits, ckpt, logs=logs)
    [line] = [line for line in logs if "resuming" in line or "ignoring" in line]
    assert line.startswith(f"[train] ignoring {ckpt}: refused to load: ") and WHY[fault] in line
    assert line.endswith("; training from the start")
    assert same_run(rerun, uninterrupted)  # trained from scratch: never loaded the damaged weights
    assert load_torch(ckpt, checksum=True)["epoch"] == 4  # a valid checkpoint again, with its checksum


def test_a_checkpoint_write_killed_midway_leaves_nothing_once_the_run_discards_its_checkpoint(tmp_path):
    """A SIGKILL inside save_torch's atomic write leaves its temporary file (no handler runs); the
    finished run's remove_checksummed deletes it with the checkpoint (CI saw one left by the
    preemption test when its SIGKILL landed mid-write)."""
    import subprocess
    import sys

    from kdprune.files import remove_checksummed, save_torch

    checkpoint = tmp_path / "run0.pt"
    save_torch(checkpoint, {"epoch": 1}, checksum=True)
    killed_mid_write = (
        "import os, signal, sys\n"
        "from kdprune.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    open(tmp, 'wb').write(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    for target in (checkpoint, checksum_path(checkpoint)):
        assert subprocess.run([sys.executable, "-c", killed_mid_write, str(target)]).returncode == -9
    assert len(list(tmp_path.glob(".*.tmp"))) == 2  # what the kills left
    remove_checksummed(checkpoint)
    assert list(tmp_path.iterdir()) == []
