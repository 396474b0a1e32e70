import re
from pathlib import Path

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.loop import Recipe, _batches, fit, planned_passes, seed_everything

CPU = torch.device("cpu")
RECIPE = Recipe(epochs=4, batch_size=64, lr=0.05, schedule="cosine")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def train(data, seed, epochs=4, checkpoint=None, stop=None, logs=None):
    seed_everything(seed, CPU)
    model = create_model("resnet8", 10, 1)
    recipe = Recipe(epochs=epochs, batch_size=64, lr=0.05, schedule="cosine")
    result = fit(
        model,
        data,
        np.arange(0, 1347, 2),
        recipe,
        make_loss("ce"),
        seed=seed,
        device=CPU,
        checkpoint=checkpoint,
        run_hash="h",
        stop_epoch=stop,
        log=(logs.append if logs is not None else lambda m: None),
    )
    return model, result


def test_learns_and_logs_one_line_per_epoch(digits):
    logs = []
    _, result = train(digits, 0, logs=logs)
    assert result["final_acc"] > 0.6 and len(result["history"]) == 4
    epoch_lines = [line for line in logs if " epoch " in line]
    assert len(epoch_lines) == 4
    assert all(k in epoch_lines[-1] for k in ("loss", "acc", "img/s", "ETA"))


def test_deterministic_for_a_seed_on_cpu(digits):
    a, ra = train(digits, 1)
    b, rb = train(digits, 1)
    _, rc = train(digits, 2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]
    assert [h["loss"] for h in ra["history"]] != [h["loss"] for h in rc["history"]]


def test_resume_from_checkpoint_gives_the_uninterrupted_result(digits, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    full, r_full = train(digits, 3)
    train(digits, 3, checkpoint=ckpt, stop=2)  # "killed" after epoch 2
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2
    logs = []
    resumed, r_res = train(digits, 3, checkpoint=ckpt, logs=logs)
    assert any("resuming" in line for line in logs)
    assert r_res["final_acc"] == r_full["final_acc"]
    assert all(torch.equal(x, y) for x, y in zip(full.state_dict().values(), resumed.state_dict().values()))


def test_step_and_cosine_schedules():
    step = Recipe(epochs=240, lr=0.05, schedule="step", milestones=(150, 180, 210), gamma=0.1)
    assert [round(step.lr_at(e), 8) for e in (0, 149.9, 150, 180, 239)] == [0.05, 0.05, 0.005, 0.0005, 0.00005]
    cos = Recipe(epochs=10, lr=0.1, schedule="cosine")
    assert cos.lr_at(0) == pytest.approx(0.1) and cos.lr_at(5) == pytest.approx(0.05) and cos.lr_at(10) == pytest.approx(0.0)


def test_batches_never_leave_a_single_sample():
    assert [s.stop - s.start for s in _batches(129, 64)] == [64, 65]
    assert [s.stop - s.start for s in _batches(130, 64)] == [64, 64, 2]


def test_budget_epochs_vs_steps(digits):
    epochs = Recipe(epochs=3, budget="epochs")
    steps = Recipe(epochs=3, budget="steps")
    assert planned_passes(epochs, 100, 1000) == 3 and planned_passes(steps, 100, 1000) == 30
    seed_everything(0, CPU)
    result = fit(
        create_model("resnet8", 10, 1),
        digits,
        np.arange(0, 1347, 5),
        Recipe(epochs=2, batch_size=64, schedule="cosine", budget="steps"),
        make_loss("ce"),
        seed=0,
        device=CPU,
        log=lambda m: None,
    )
    assert result["epochs"] == 10  # 2 full-data epochs of steps = 10 passes over a 20% subset
    assert sum(h["test_acc"] is not None for h in result["history"]) == 2  # evaluated about `epochs` times
    assert result["history"][-1]["lr"] < 0.01  # the cosine schedule ran to its end over the stretched passes


class NaNFromStep:
    """Cross-entropy that turns into NaN from step `step` of epoch `epoch` (both 1-based) on: a run
    diverging mid-epoch."""

    needs_teacher = False

    def __init__(self, epoch: int, step: int):
        self.bad, self.at = (epoch, step), (0, 0)

    def start_epoch(self, epoch, device):
        self.at = (epoch + 1, 0)

    def __call__(self, logits, targets, teacher_logits=None):
        self.at = (self.at[0], self.at[1] + 1)
        ce = torch.nn.functional.cross_entropy(logits, targets)
        return {"ce": ce * float("nan") if self.at >= self.bad else ce}


def test_a_non_finite_loss_names_its_first_step_in_one_line_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    from kdprune.stopping import NonFiniteLoss

    ckpt = tmp_path / "checkpoint.pt"
    seed_everything(0, CPU)
    with pytest.raises(NonFiniteLoss) as err:
        fit(
            create_model("resnet8", 10, 1),
            digits,
            np.arange(0, 1347, 2),
            RECIPE,
            NaNFromStep(3, 7),
            seed=0,
            device=CPU,
            checkpoint=ckpt,
            run_hash="h",
            label="student resnet8 s0",
            log=lambda m: None,
        )
    message = str(err.value)
    assert message.startswith("[student resnet8 s0] the training loss is nan at step 7 of 11 in epoch 3: stopped before its checkpoint")
    assert "\n" not in message
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2  # the diverged epoch never overwrote it


def test_a_job_whose_loss_diverges_exits_1_with_one_line_naming_the_step(tmp_path):
    """`kdprune run teacher` of the smoke plan with a learning rate of 1e6: the loss overflows in the
    first epoch; the CLI prints the one line (run, epoch, step) and exits 1, and writes no metrics."""
    import os
    import subprocess
    import sys

    from kdprune.plan import Plan

    repo = Path(__file__).resolve().parent.parent.parent
    plan = Plan.from_config(repo / "config.yaml", {"recipes": {"teacher": {"epochs": 2, "lr": 1.0e6}}})
    plan.results, plan.plan_file = str(tmp_path / "results"), str(tmp_path / "plan.json")
    plan.write()
    key = "digits/teachers/resnet8-teacher-s0"
    args = [sys.executable, "-m", "kdprune", "--threads", "1", "run", "teacher", "--plan", plan.plan_file, "--key", key]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, KDPRUNE_FORKSERVER=""), timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stderr[-2000:]
    assert re.fullmatch(
        r"kdprune run: \[teacher resnet8 s0\] the training loss is (nan|inf) at step \d+ of 22 in epoch 1: stopped before its checkpoint, "
        r"no metrics written; lower the learning rate or check the data",
        lines[0],
    ), lines[0]
    assert not (tmp_path / "results" / key / "metrics.json").exists()
