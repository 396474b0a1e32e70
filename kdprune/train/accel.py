"""How a training step executes, separate from what it computes (config key `accel`).

At CIFAR sizes and batch 64 a GPU step is bound by kernel launches and Python, not by arithmetic:
the reference KD code bases (DataLoader + PIL + torchvision transforms, fp32) leave the GPU mostly
idle. The fast mode therefore (1) keeps the uint8 training set on the device and does crop + flip
there (kdprune.train.step), (2) runs forward passes under bf16 autocast (weights, optimizer state and
loss stay fp32), (3) uses channels_last, and (4) captures the whole step (augmentation, teacher,
student, loss, backward, update) as one CUDA graph, replayed with one launch per step. None of it
changes the maths: the same seed draws the same batches and views on every mode; bf16 rounding is
the only difference (tests/test_fast_path.py states the tolerance).

`auto` (the default) is `fast` on CUDA and `plain` elsewhere: bf16 convolutions on a CPU are slow,
and CUDA graphs do not exist there.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace

import torch

from kdprune.registry import Registry


@dataclass(frozen=True)
class Accel:
    precision: str = "fp32"  # fp32 | bf16 (autocast on forward passes)
    channels_last: bool = False  # NHWC memory layout for images and conv weights
    cuda_graphs: bool = False  # one captured graph per full-size step (CUDA only)

    def autocast(self, device: torch.device):
        if self.precision == "bf16":
            # cache_enabled=False: cached casts of the weights would go stale across graph replays
            return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def prepare(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        model.to(device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def as_dict(self) -> dict:
        return asdict(self)


ACCEL_MODES: Registry = Registry("accel mode")
ACCEL_MODES.register("plain")(Accel())
ACCEL_MODES.register("fast")(Accel(precision="bf16", channels_last=True, cuda_graphs=True))
PRECISIONS = ("fp32", "bf16")


def resolve_accel(setting: str | dict | None, device: torch.device) -> Accel:
    """`auto` | `plain` | `fast`, or a mapping {mode: <name>, <field>: value, ...} that overrides
    single fields of a mode (e.g. {mode: fast, cuda_graphs: false}). CUDA graphs are dropped off CUDA."""
    setting = setting or "auto"
    fields = dict(setting) if isinstance(setting, dict) else {"mode": setting}
    mode = fields.pop("mode", "auto")
    if mode == "auto":
        mode = "fast" if torch.device(device).type == "cuda" else "plain"
    accel = replace(ACCEL_MODES.get(mode), **fields)
    if accel.precision not in PRECISIONS:
        raise ValueError(f"accel.precision = {accel.precision!r} is not allowed: one of {', '.join(PRECISIONS)}")
    if torch.device(device).type != "cuda":
        accel = replace(accel, cuda_graphs=False)
    return accel
