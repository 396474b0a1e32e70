"""The one training loop: CE or any registered loss (KD from a frozen teacher), on a subset given as
indices, SGD + momentum + weight decay with a step or cosine schedule, crop + flip augmentation.
Checkpoints every epoch (atomically) and resumes from the checkpoint when re-run with the same
settings, so a preempted or requeued job continues instead of starting over."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from kdprune.accel import Accel
from kdprune.io import save_torch
from kdprune.optim import SGD
from kdprune.registry import Registry
from kdprune.step import StepRunner, batch_source

SCHEDULES: Registry = Registry("schedule")


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "step"
    milestones: tuple[int, ...] = field(default=())  # step schedule: epochs where lr *= gamma
    gamma: float = 0.1
    eval_batch_size: int = 1024
    # "epochs": every keep fraction trains `epochs` passes over its subset (fewer steps when
    # pruned); "steps": as many steps as `epochs` passes over the full training set.
    budget: str = "epochs"

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        d["milestones"] = tuple(d.get("milestones", ()))
        return cls(**d)

    def lr_at(self, epoch_progress: float) -> float:
        """Learning rate after `epoch_progress` epochs (fractional: schedules move per step)."""
        return self.lr * SCHEDULES.get(self.schedule)(self, epoch_progress)


@SCHEDULES.register("step")
def step_schedule(recipe: Recipe, progress: float) -> float:
    return recipe.gamma ** sum(progress >= m for m in recipe.milestones)


@SCHEDULES.register("cosine")
def cosine_schedule(recipe: Recipe, progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(progress / recipe.epochs, 1.0)))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True


@torch.no_grad()
def split_logits(model: nn.Module, data, split: str, device: torch.device, batch_size: int = 1024,
                 accel: Accel = Accel()) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a whole split of `data`, in order (eval mode, no augmentation), on the CPU."""
    model.eval()
    outs, ys = [], []
    for x, y in data.eval_batches(split, batch_size, device):
        with accel.autocast(device):
            outs.append(model(accel.images(x)).float().cpu())
        ys.append(y.cpu())
    return torch.cat(outs), torch.cat(ys)


def accuracy(model: nn.Module, data, device: torch.device, batch_size: int = 1024, accel: Accel = Accel()) -> float:
    logits, y = split_logits(model, data, "test", device, batch_size, accel)
    return (logits.argmax(1) == y).float().mean().item()


def _batches(n: int, batch_size: int) -> list[slice]:
    # A trailing batch of one sample would break BatchNorm in training mode: fold it away.
    edges = list(range(0, n, batch_size)) + [n]
    if len(edges) > 2 and edges[-1] - edges[-2] == 1:
        edges.pop(-2)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def planned_passes(recipe: Recipe, n_subset: int, n_full: int) -> int:
    """Passes over the subset that the budget allows (see Recipe.budget)."""
    if recipe.budget == "epochs":
        return recipe.epochs
    return max(recipe.epochs, round(recipe.epochs * n_full / n_subset))


def fit(
    model: nn.Module,
    data,
    indices: np.ndarray,
    recipe: Recipe,
    objective: Callable,
    *,
    seed: int,
    device: torch.device,
    teacher: nn.Module | None = None,
    teacher_views: torch.Tensor | None = None,
    accel: Accel = Accel(),
    checkpoint: Path | None = None,
    run_hash: str = "",
    stop_epoch: int | None = None,
    label: str = "train",
    log: Callable[[str], None] = print,
    on_batch: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
) -> dict:
    """Train `model` in place on the training samples `indices` of `data`; returns the history and
    summary metrics. One "epoch" below is one pass over the subset; the schedule runs on the
    recipe's epochs, so a "steps" budget stretches it over more passes. `stop_epoch` ends training
    early (early-epoch scores); `on_batch(epoch, sample_indices, logits, targets)` sees every
    training step (training-dynamics scores such as forgetting events). `accel` says how steps run
    (kdprune.accel); `teacher_views` (kdprune.teacher_views) replaces the teacher's forward passes
    by exact lookups."""
    accel.prepare(model, device)
    if teacher is not None:
        accel.prepare(teacher, device).eval()
    optimizer = SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    indices = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
    passes = planned_passes(recipe, len(indices), len(data.y_train))
    per_pass = recipe.epochs / passes  # schedule epochs per pass
    eval_every = max(1, passes // recipe.epochs)  # about `epochs` evaluations whatever the budget
    last_epoch = min(stop_epoch or passes, passes)
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        try:
            if state.get("run_hash") != run_hash:
                raise ValueError("written for other settings")
            optimizer.load_state_dict(state["optimizer"])
            model.load_state_dict(state["model"])
            history, start_epoch = state["history"], state["epoch"]
            log(f"[{label}] resuming from {checkpoint} at epoch {start_epoch}")
        except ValueError as why:
            log(f"[{label}] ignoring {checkpoint}: {why}")

    batches = _batches(len(indices), recipe.batch_size)
    source = batch_source(data, device, accel)
    runner = StepRunner(model, objective, optimizer, accel, device, teacher, teacher_views)
    train_seconds = sum(h["train_seconds"] for h in history)
    epoch_seconds = sum(h["epoch_seconds"] for h in history)
    for epoch in range(start_epoch, last_epoch):
        t0 = time.perf_counter()
        model.train()
        runner.reset_sums()
        # One generator per epoch, derived from (seed, epoch): a resumed run draws the same batches.
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = indices[torch.randperm(len(indices), generator=gen)]
        for step, (idx, packed) in enumerate(source.plan(order, batches, gen)):
            lr = recipe.lr_at((epoch + step / len(batches)) * per_pass)
            optimizer.set_lr(lr)
            logits, y = runner.run(source, packed, recipe.batch_size)
            if on_batch is not None:
                on_batch(epoch, idx, logits, y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_train = time.perf_counter() - t0
        evaluate = (epoch + 1) % eval_every == 0 or epoch + 1 == last_epoch
        acc = accuracy(model, data, device, recipe.eval_batch_size, accel) if evaluate else None
        record = {k: float(v) / len(indices) for k, v in runner.sums.items()}
        record.update(epoch=epoch + 1, test_acc=acc, lr=lr, train_seconds=t_train, epoch_seconds=time.perf_counter() - t0)
        history.append(record)
        train_seconds += t_train
        epoch_seconds += record["epoch_seconds"]
        if evaluate:
            best = max(h["test_acc"] for h in history if h["test_acc"] is not None)
            eta = epoch_seconds / (epoch + 1 - start_epoch) * (last_epoch - epoch - 1)
            terms_txt = ", ".join(f"{k} {record[k]:.4f}" for k in runner.sums if k != "loss")
            log(
                f"[{label}] epoch {epoch + 1:>3}/{last_epoch} | loss {record['loss']:.4f} ({terms_txt}) | "
                f"acc {100 * acc:.2f}% (best {100 * best:.2f}%) | lr {lr:.4g} | "
                f"{len(indices) / t_train:,.0f} img/s | ETA {clock(eta)}"
            )
        if checkpoint is not None:
            save_torch(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1, "history": history, "run_hash": run_hash})

    evaluated = [h for h in history if h["test_acc"] is not None]
    best = max(evaluated, key=lambda h: h["test_acc"]) if evaluated else None
    return {
        "history": history,
        "final_acc": evaluated[-1]["test_acc"] if evaluated else float("nan"),
        "best_acc": best["test_acc"] if best else float("nan"),
        "best_epoch": best["epoch"] if best else -1,
        "epochs": last_epoch,
        "n_train": len(indices),
        "n_params": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_seconds,
        "train_images_per_s": len(indices) * len(history) / train_seconds if train_seconds else float("nan"),
        "recipe": asdict(recipe),
        "accel": accel.as_dict(),
    }


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
