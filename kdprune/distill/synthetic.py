"""The real pool a distillation reads and the synthetic set it learns (VICO-UoE/DatasetCondensation,
`main.py` / `main_DM.py`: "organize the real dataset", `get_images`, "initialize the synthetic data").

`RealPool`: the real training images a method may use (the `subset`: BiLP's pruned set, whose
`drop_samples` removes images before distillation), standardised once and kept on the device, with
their positions per class (the original's `indices_class`). `sample(c, n)` draws n distinct random
images of class c (all of them when the class has fewer), the original's `get_images`.

`initial_images`: the synthetic set, `ipc` images per class in class order (rows c * ipc ... c * ipc
+ ipc - 1 are class c, the original's `label_syn`), either `real` (each class's rows are `ipc`
distinct random real images of that class from the pool) or `noise` (standard normal pixels).

Images are in the normalised space the networks read: (pixel / 255 - mean) / std per channel, with
the training set's mean and std (`ImageData.normalizer`).

`fresh_network`: the randomly initialised ConvNet of one iteration; `generators` and `settings_of`:
the run's random streams and settings, shared by the methods (their iterations run through
kdprune.distill.resume: checkpoints, resuming, stop signals).

`RealBatch` and `keep_all`: the hook through which a real batch passes before it is matched (the
methods' `real_batch_filter` setting, e.g. causal-effect pruning during distillation). A filter gets
the batch (images, their training-set indices, class, the current network, iteration, the class's
synthetic images and the step's DSA draw) and returns the part to keep (`batch.keep(...)`).

Deviations from the original:

- Randomness from `torch.Generator`s seeded by the run's seed (the original: numpy's and torch's
  global RNGs, unseeded), so that a run repeats on the CPU.
- The normalisation statistics are those of the training set (`ImageData.channel_stats`), where
  the original uses fixed per-dataset constants (for CIFAR-10 a std of (0.2023, 0.1994, 0.2010),
  not the training set's); pruning does not change them (BiLP also normalises before dropping).
- A class with fewer pool images than `ipc` (init `real`) or with none is an error; the original
  would fail on the shape or train on an empty batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from kdprune.distill.dsa import draw, with_draw
from kdprune.distill.resume import Loop
from kdprune.models import create_model


class RealPool:
    """The usable real images (`subset` of the training set), standardised, on `device`."""

    def __init__(self, real, subset: np.ndarray, device: torch.device, chunk: int = 4096):
        subset = np.asarray(subset, dtype=np.int64)
        if subset.ndim != 1 or len(np.unique(subset)) != len(subset):
            raise ValueError("subset must be a 1-d array of distinct training-set indices")
        if len(subset) and (subset.min() < 0 or subset.max() >= len(real.y_train)):
            raise ValueError(f"subset indices must lie in [0, {len(real.y_train)})")
        self.num_classes = real.num_classes
        self.device = torch.device(device)
        norm = real.normalizer(self.device)
        index = torch.from_numpy(subset)
        parts = [norm(real.x_train[index[i : i + chunk]].to(self.device)) for i in range(0, len(index), chunk)]
        self.images = torch.cat(parts) if parts else torch.empty(0, real.channels, real.image_size, real.image_size, device=self.device)
        self.labels = real.y_train[index].clone()
        self.indices = index  # position in the pool -> index in the training set
        # per class, positions in the pool (the original's indices_class)
        self.by_class = [torch.nonzero(self.labels == c).flatten() for c in range(self.num_classes)]

    def class_sizes(self) -> list[int]:
        return [len(p) for p in self.by_class]

    def sample(self, c: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n distinct random images of class c (all of the class if it has fewer; the original's
        `get_images`), with their training-set indices."""
        positions = self.by_class[c]
        if len(positions) == 0:
            raise ValueError(f"class {c} has no real images in the subset")
        picked = positions[torch.randperm(len(positions), generator=generator)[:n]]
        return self.images[picked.to(self.device)], self.indices[picked]


def initial_images(pool: RealPool, ipc: int, init: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The starting synthetic set (images on the pool's device, labels int64 on the CPU), `ipc` per
    class in class order, from `init` = 'real' (random distinct real images of each class) or
    'noise' (standard normal)."""
    c, h, w = pool.images.shape[1:]
    labels = torch.arange(pool.num_classes).repeat_interleave(ipc)
    if init == "noise":
        return torch.randn(pool.num_classes * ipc, c, h, w, generator=generator).to(pool.device), labels
    if init != "real":
        raise ValueError(f"init {init!r} is not allowed; allowed: real, noise")
    short = {k: n for k, n in enumerate(pool.class_sizes()) if n < ipc}
    if short:
        raise ValueError(f"init 'real' needs {ipc} real images per class; the subset has fewer in classes {short}")
    images = torch.cat([pool.sample(k, ipc, generator)[0] for k in range(pool.num_classes)])
    return images.clone(), labels


@dataclass
class RealBatch:
    """One class's real batch of one matching step, as the filter hook sees it."""

    images: torch.Tensor  # standardised, before DSA
    indices: torch.Tensor  # training-set index of each image (CPU, int64)
    cls: int
    net: torch.nn.Module  # the network of this iteration (DC: as trained so far by the inner loop)
    iteration: int
    method: str  # "dc" or "dm"
    syn: torch.Tensor | None = None  # the class's synthetic images now (detached): what the batch is matched with
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # the step's Siamese DSA draw (None: no DSA)

    def keep(self, which: torch.Tensor) -> RealBatch:
        """The part of the batch at `which` (a boolean mask or positions)."""
        which = torch.as_tensor(which)
        return replace(self, images=self.images[which.to(self.images.device)], indices=self.indices[which.cpu()])


RealBatchFilter = Callable[[RealBatch], RealBatch]


def keep_all(batch: RealBatch) -> RealBatch:
    """The default filter: the whole batch."""
    return batch


def filtered(batch: RealBatch, real_filter: RealBatchFilter | None) -> RealBatch:
    """The batch after the filter, which must keep at least one image."""
    kept = (real_filter or keep_all)(batch)
    if len(kept.images) == 0:
        raise ValueError(f"real_batch_filter kept no image of class {batch.cls} at iteration {batch.iteration}")
    return kept


def matched_batches(pool: RealPool, image_syn: torch.Tensor, c: int, ipc: int, net, iteration: int, method: str, settings: dict, gen: dict, params):
    """What one matching step compares for class c: a random real batch of the class (after the
    `real_batch_filter`) and the class's synthetic images, both under one Siamese DSA draw when
    `dsa` (the same draw the filter is handed). Returns (real images, synthetic images)."""
    x, idx = pool.sample(c, settings["batch_real"], gen["data"])
    x_syn = image_syn[c * ipc : (c + 1) * ipc]
    h, w = x_syn.shape[2:]
    augment = with_draw(draw(settings["dsa_strategy"], 1, h, w, gen["dsa"], params), params) if settings["dsa"] else None
    x_real = filtered(RealBatch(x, idx, c, net, iteration, method, x_syn.detach(), augment), settings["real_batch_filter"]).images
    return (augment(x_real), augment(x_syn)) if augment else (x_real, x_syn)


def distilled(method: str, loop: Loop, labels: torch.Tensor, ipc: int, seed: int, settings: dict) -> dict:
    """A distiller's result (kdprune.distill: the entry signature): the images on the CPU, their
    labels, the loss history, what made them (the filter hook, a callable, is left out) and where
    this attempt resumed (`resumed`: the iteration, the earlier attempts' loop seconds)."""
    kept = {k: v for k, v in settings.items() if k != "real_batch_filter"}
    return {
        "images": loop.images.detach().cpu(),
        "labels": labels,
        "history": loop.history,
        "method": method,
        "ipc": ipc,
        "seed": seed,
        "settings": kept,
        "resumed": loop.summary(),
    }


def generators(seed: int, *names: str) -> dict[str, torch.Generator]:
    """Independent CPU generators derived from the run's seed, one per name; the first one is seeded
    with `seed` itself."""
    states = np.random.SeedSequence(seed).generate_state(len(names), dtype=np.uint64)
    seeds = [int(seed)] + [int(s) for s in states[1:]]
    return {name: torch.Generator().manual_seed(s) for name, s in zip(names, seeds)}


def fresh_network(pool: RealPool, settings: dict, generator: torch.Generator) -> torch.nn.Module:
    """A newly initialised ConvNet (`net_width`, `net_depth`) on the pool's device, in train mode;
    its initial weights come from `generator` (PyTorch's default initialisation under a seed drawn
    from it; the global RNG is left as it was)."""
    c, size = pool.images.shape[1], pool.images.shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        net = create_model("ConvNet", pool.num_classes, c, image_size=size, width=settings["net_width"], depth=settings["net_depth"])
    return net.to(pool.device).train()


def settings_of(defaults: dict[str, Any], settings: dict | None, log) -> dict[str, Any]:
    """The method's settings: `defaults` overridden by `settings`; keys it does not know are
    reported and ignored (the block may hold other steps' settings)."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        log(f"distill: ignoring settings {unknown}")
    return {**defaults, **{k: v for k, v in settings.items() if k in defaults}}
