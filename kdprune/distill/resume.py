"""A distillation that survives being stopped (issue #17): DC's and DM's outer iterations run through
`iterate`, which saves the loop's state every `Checkpoint.every` iterations, and at once when a
stop signal arrived (kdprune.stopping: then it raises `Preempted`); a rerun resumes from the saved
state and ends bit-identical to an uninterrupted run on the same device and thread count.

The state between two iterations is everything a later iteration reads: the synthetic images, the
image optimizer's state (SGD's momentum), every generator's state (real batches, network
initialisations, DSA draws, DC's shuffles), the loss history, the iterations done, and the
real-batch filter's record (BiLP's causal-effect filter: `state_dict` / `load_state_dict`; a
filter without them is taken to keep no state). DC's network and its optimizer are made anew every
iteration, so nothing of them is saved; a stop waits for the iteration under way to end.

A checkpoint is written with `save_torch(..., checksum=True)` and read only when its SHA-256 sidecar
matches, it holds nothing but tensors and plain values, and it was written by the same run
(`run_key`: method, dataset, IPC, seed, the settings that change the result, the real images used,
the filter's settings). Anything else (corrupt, truncated, without its sidecar, another run's) is
ignored with one log line and the run starts over; the next save replaces it. A finished run
removes its checkpoint, or with `keep` leaves its final state for the caller to remove (a job of
several sets removes them once all are written: a rerun after a stop during a later set then
resumes the earlier ones at their end)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdprune.files import load_torch, remove_checksummed, save_torch
from kdprune.plan.kinds import settings_hash
from kdprune.stopping import Preempted, requested

CHECKPOINT_FILE = "checkpoint.pt"  # beside a distilled set's synthetic.pt
NOT_IN_RESULT = ("real_batch_filter", "log_every")  # settings that do not change the synthetic set (the filter: by its config)


@dataclass(frozen=True)
class Checkpoint:
    """Where a distillation keeps its state, how often it saves it (`every` iterations), how its
    messages name the run, and whether the final state stays on disk (`keep`)."""

    path: Path
    every: int
    label: str = "[distill]"
    keep: bool = False

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int | float) or self.every != int(self.every) or self.every < 1:
            raise ValueError(f"checkpoint every {self.every!r} iterations is not allowed: an integer >= 1")
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "every", int(self.every))


@dataclass
class Loop:
    """A distillation's state between two iterations; `iterate` changes it in place."""

    images: torch.Tensor  # the synthetic images (the optimised leaf)
    optimizer: torch.optim.Optimizer
    generators: dict[str, torch.Generator]
    real_filter: Any = None
    history: list[float] = field(default_factory=list)
    done: int = 0  # iterations finished
    resumed_at: int = 0  # where this attempt began
    seconds_before: float = 0.0  # loop seconds of the earlier attempts (up to their last checkpoint)

    def state_dict(self, key: str, seconds: float) -> dict:
        keeps_state = hasattr(self.real_filter, "state_dict")
        return {
            "key": key,
            "iteration": self.done,
            "images": self.images.detach().cpu(),
            "optimizer": self.optimizer.state_dict(),
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "history": list(self.history),
            "filter": self.real_filter.state_dict() if keeps_state else None,
            "seconds": seconds,
        }

    def load_state_dict(self, state: Any, key: str) -> None:
        """Everything checked before anything changes: a refused state leaves the loop as it was."""
        if not isinstance(state, dict) or state.get("key") != key:
            raise ValueError("written by another run (other settings, data, seed or filter)")
        images, gens = state.get("images"), state.get("generators")
        if not _like(images, self.images):
            raise ValueError("its synthetic images do not fit this run")
        mine = {name: g.get_state() for name, g in self.generators.items()}
        if not isinstance(gens, dict) or set(gens) != set(mine) or any(not _like(gens[name], state) for name, state in mine.items()):
            raise ValueError("its generators are not this run's")
        if hasattr(self.real_filter, "load_state_dict") and state.get("filter") is None:
            raise ValueError("it holds no record of the real-batch filter")
        if len(state.get("history", ())) != state.get("iteration"):
            raise ValueError("its loss history does not match its iteration")
        self.optimizer.load_state_dict(state["optimizer"])
        with torch.no_grad():
            self.images.copy_(images)
        for name, g in self.generators.items():
            g.set_state(gens[name])
        if hasattr(self.real_filter, "load_state_dict"):
            self.real_filter.load_state_dict(state["filter"])
        self.history[:] = [float(v) for v in state["history"]]
        self.done = self.resumed_at = int(state["iteration"])
        self.seconds_before = float(state["seconds"])

    def summary(self) -> dict:
        """What a distiller's result says of the attempts (kdprune.distill.synthetic.distilled)."""
        return {"iteration": self.resumed_at, "seconds": self.seconds_before}


def _like(value: Any, reference: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == reference.dtype and value.shape == reference.shape


def run_key(method: str, real, subset, ipc: int, seed: int, settings: dict) -> str:
    """The identity of a distillation run: a checkpoint of any other is not loaded."""
    real_filter = settings.get("real_batch_filter")
    config = getattr(real_filter, "config", None)
    identity = {
        "method": method,
        "dataset": getattr(real, "name", None),
        "ipc": ipc,
        "seed": int(seed),
        "settings": {k: v for k, v in settings.items() if k not in NOT_IN_RESULT},
        "subset": hashlib.sha256(np.asarray(subset, dtype=np.int64).tobytes()).hexdigest(),
        "filter": config() if config else real_filter and type(real_filter).__qualname__,
    }
    return settings_hash(identity)


def _resume(checkpoint: Checkpoint, loop: Loop, key: str, total: int, log: Callable[[str], None]) -> None:
    if not checkpoint.path.exists():
        return
    try:
        loop.load_state_dict(load_torch(checkpoint.path, checksum=True), key)
    except (ValueError, KeyError, TypeError, RuntimeError) as why:  # one line, never loaded
        first = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
        where = "" if first.startswith(str(checkpoint.path)) else f"{checkpoint.path}: "
        log(f"{checkpoint.label} ignoring its checkpoint, starting over: {where}{first}")
        return
    log(f"{checkpoint.label} resuming from {checkpoint.path} at iteration {loop.done}/{total}")


def iterate(
    method: str, step: Callable[[int], float], loop: Loop, settings: dict, key: str, checkpoint: Checkpoint | None, log: Callable[[str], None]
) -> None:
    """Run a distillation's iterations 0 ... settings["iterations"] (the original's iterations + 1)
    from where `checkpoint` left off; `step(it)` runs iteration `it` and returns its loss. Saves
    every `checkpoint.every` iterations; on a stop signal saves at once and raises `Preempted`."""
    total = settings["iterations"] + 1
    if checkpoint is not None:
        _resume(checkpoint, loop, key, total, log)
    saved = loop.done if loop.done else None
    start = time.perf_counter()

    def save() -> None:
        save_torch(checkpoint.path, loop.state_dict(key, loop.seconds_before + time.perf_counter() - start), checksum=True)

    for it in range(loop.done, total):
        loop.history.append(step(it))
        loop.done = it + 1
        if settings["log_every"] and it % settings["log_every"] == 0:
            log(f"{method} iter {it:05d}/{settings['iterations']} loss {loop.history[-1]:.4f}")
        stop = requested() if loop.done < total else None  # the last iteration done: nothing left to stop
        if checkpoint is not None and (stop or loop.done % checkpoint.every == 0):
            save()
            saved = loop.done
        if stop:
            label = checkpoint.label if checkpoint else method
            where = f"its state is in {checkpoint.path}: rerun to resume" if checkpoint else "no checkpoint was asked for: a rerun starts over"
            raise Preempted(f"{label} stopped by {stop} after iteration {loop.done} of {total}; {where}")
    if checkpoint is None:
        return
    if not checkpoint.keep:
        remove_checksummed(checkpoint.path)
    elif saved != total:
        save()
