"""EL2N (Paul et al., 2021): the L2 norm of the error vector softmax(f(x)) - onehot(y), computed
at an early epoch of training and averaged over K independent runs (different seeds).

Choices (config `scores.el2n`): `arch`, `runs` (K), `epoch` (when to score); each run follows the
full-length schedule of the `score` recipe and stops at `epoch`, as in the paper's early snapshot."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.accel import Accel
from kdprune.train.loop import Recipe, fit, seed_everything, split_logits


def el2n_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (F.softmax(logits, dim=1) - onehot).norm(dim=1)


def el2n_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    recipe = Recipe.from_dict(settings["recipe"])
    total = torch.zeros(len(data.y_train), dtype=torch.float64)
    everything = np.arange(len(data.y_train))
    for k in range(settings["runs"]):
        run_seed = seed * 1000 + k
        seed_everything(run_seed, device)
        model = create_model(settings["arch"], data.num_classes, data.channels)
        fit(
            model,
            data,
            everything,
            recipe,
            make_loss("ce"),
            seed=run_seed,
            device=device,
            accel=accel,
            stop_epoch=settings["epoch"],
            label=f"el2n run {k + 1}/{settings['runs']}",
            log=log,
        )
        logits, labels = split_logits(model, data, "train", device)
        total += el2n_from_logits(logits, labels).double()
    return (total / settings["runs"]).numpy()
