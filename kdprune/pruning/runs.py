"""The training runs behind the scores: K runs of the method's `arch` on the FULL training set with its
`recipe`, run k seeded `seed * 1000 + k` (so two scores with equal arch, recipe and epoch follow
the same trajectories), each stopped after `epoch` epochs of the full-length schedule.

`epoch` means the same for every score: absent (None) = the whole schedule; 0 = at
initialisation, no training (fit() itself would read stop_epoch 0 as "no early stop", so it is not
called); n = after n epochs. Scores recorded during training (forgetting, AUM) need at least one
epoch; their declaration says so (`min_epoch=1` in kdprune/pruning/__init__.py), checked with the
config.

`PresentationRecorder` is the base of the `on_batch` hooks that record per-presentation training
dynamics: it checks that every (sample, epoch) presentation was seen, and hands its record to the
run's checkpoint (`state_dict`), so a run resumed mid-epoch ends with the record of an
uninterrupted one.

Checkpoints: a score job (kdprune.jobs.runners.compute_score) passes `settings["checkpoints"]`
(`RunCheckpoints`); run k then checkpoints like any training run, beside the score file. They stay
until the score file is written: a job killed in run k reruns the finished runs from their last
checkpoints (no training) and resumes run k."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kdprune.files import remove_checksummed
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.accel import Accel
from kdprune.train.loop import Recipe, fit, planned_passes, seed_everything


def trained_epochs(settings: dict, n: int) -> int:
    """Epochs each run trains: `epoch` (0 = none) capped by the recipe's passes, or all of them."""
    passes = planned_passes(Recipe.from_dict(settings["recipe"]), n, n)
    epoch = settings.get("epoch")
    return passes if epoch is None else min(int(epoch), passes)


@dataclass(frozen=True)
class RunCheckpoints:
    """Where the training runs of one score job checkpoint: `<stem>.run<k>.pt`, each tagged with the
    job's settings hash (`settings_hash`) and its run."""

    stem: Path
    settings_hash: str

    def path(self, k: int) -> Path:
        return self.stem.with_name(f"{self.stem.name}.run{k}.pt")

    def run_hash(self, k: int) -> str:
        return f"{self.settings_hash} run {k}"

    def remove(self) -> None:
        """Every run's checkpoint and its checksum file (the score file is written)."""
        for path in self.stem.parent.glob(f"{self.stem.name}.run*.pt"):
            remove_checksummed(path)


def as_device(device) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def score_runs(
    data,
    settings: dict,
    seed: int,
    device,
    log,
    name: str,
    accel: Accel = Accel(),
    recorder: Callable[[int, int], Callable] | None = None,
) -> Iterator[tuple[torch.nn.Module, Callable | None]]:
    """Yield (model, hook) after each of the `runs` training runs, the model on `device` in eval
    mode. `recorder(n_samples, epochs)` makes a fresh `on_batch` hook per run (None: no hook).
    `settings["checkpoints"]` (a RunCheckpoints, optional): where the runs checkpoint."""
    device = as_device(device)
    n = len(data.y_train)
    recipe = Recipe.from_dict(settings["recipe"])
    epochs = trained_epochs(settings, n)
    runs = int(settings["runs"])
    checkpoints: RunCheckpoints | None = settings.get("checkpoints")
    for k in range(runs):
        run_seed = seed * 1000 + k
        seed_everything(run_seed, device)
        model = create_model(settings["arch"], data.num_classes, data.channels, data.image_size)
        hook = recorder(n, epochs) if recorder is not None else None
        if epochs > 0:
            fit(
                model,
                data,
                np.arange(n),
                recipe,
                make_loss("ce"),
                seed=run_seed,
                device=device,
                accel=accel,
                stop_epoch=epochs,
                checkpoint=checkpoints and checkpoints.path(k),
                run_hash=checkpoints.run_hash(k) if checkpoints else "",
                label=f"{name} run {k + 1}/{runs}",
                log=log,
                on_batch=hook,
            )
        yield model.to(device).eval(), hook


class PresentationRecorder:
    """Base of the `on_batch` hooks of training-dynamics scores: every sample is presented once per
    epoch, and `check()` refuses a record with a missing (sample, epoch) presentation."""

    # the arrays that make up the record, saved with the run's checkpoint; subclasses add theirs
    recorded: tuple[str, ...] = ("seen",)

    def __init__(self, n_samples: int, epochs: int):
        if epochs < 1:
            raise ValueError(f"{type(self).__name__} records training dynamics: it needs at least one epoch, got {epochs}")
        self.seen = np.zeros((n_samples, epochs), dtype=bool)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(getattr(self, name).copy()) for name in self.recorded}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """A record saved by `state_dict` for the same samples and epochs (else ValueError: the
        checkpoint is ignored)."""
        arrays = {name: state[name].cpu().numpy() if name in state else None for name in self.recorded}
        for name, value in arrays.items():
            mine = getattr(self, name)
            if value is None or value.shape != mine.shape or value.dtype != mine.dtype:
                raise ValueError(f"its {type(self).__name__} record has no {name} of shape {mine.shape}")
        for name, value in arrays.items():
            setattr(self, name, value.copy())

    def mark(self, epoch: int, sample_indices: torch.Tensor) -> np.ndarray:
        idx = sample_indices.cpu().numpy()
        self.seen[idx, epoch] = True
        return idx

    def check(self, what: str) -> None:
        if not self.seen.all():
            raise RuntimeError(f"{what}: {(~self.seen).sum()} (sample, epoch) presentations were never recorded")
