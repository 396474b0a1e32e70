"""Trained weights from outside the suite: a teacher given as an existing checkpoint instead of a
teacher job's training run.

`load_checkpoint(path, arch, num_classes, in_channels)` builds `arch` from the zoo and loads the file
into it (strict: every parameter and buffer, every shape), whatever layout the file has:

- `repdistiller`: RepDistiller's teacher files (`save/models/<arch>_vanilla/ckpt_epoch_240.pth`, as
  its scripts/fetch_pretrained_teachers.sh names them; mdistiller ships the same files as
  `download_ckpts/cifar_teachers/`): a dict whose state dict is under `model` (beside `epoch`,
  `accuracy`, `optimizer`). Its CIFAR ResNets call the shortcut projection `downsample`, the suite's
  CifarResNet `shortcut`; that one name is translated. Files from PyTorch before 0.4.1, without BN's
  `num_batches_tracked`, load too (PyTorch fills it in).
- `kdprune`: the suite's own `model.pt` (kdprune.jobs.runners._save_run: `arch`, `num_classes`,
  `in_channels`, `state_dict`); its recorded architecture and shape must be the ones asked for.
- `state_dict`: a bare state dict, e.g. torchvision's released ImageNet weights for `tv_resnet34/50`
  (mdistiller's ImageNet teachers).

It returns the model in eval mode and `info = {"sha256": ..., "layout": ...}`: the file's SHA-256
(which teacher a result used) and the layout it was read as. A file that does not fit the requested
architecture raises ValueError with one line naming the architecture, the file and what did not fit.

Meant use (not wired into the workflow yet): a teacher job whose config names a checkpoint calls
`load_checkpoint` instead of training, evaluates the model on the test set (a check that the import
worked: an imported teacher expects the preprocessing it was trained with; RepDistiller standardises
CIFAR-100 by its training-set channel statistics, as the suite does), and writes the usual `model.pt`
(`save_torch(..., {"arch", "num_classes", "in_channels", "state_dict": model.state_dict()})`) and a
metrics.json that records `info`. Everything downstream (view tables, scores, KD students) then
reads the teacher through `runners.load_teacher` as if the suite had trained it."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from kdprune.files import sha256_of
from kdprune.models import create_model
from kdprune.models.resnet_cifar import CifarResNet

LAYOUTS = ("repdistiller", "kdprune", "state_dict")

# Module names that RepDistiller spells differently from the suite, per model class: one path
# component of every key (and of the load metadata) is renamed.
RENAMES: dict[type, dict[str, str]] = {CifarResNet: {"downsample": "shortcut"}}


def load_checkpoint(path: str | Path, arch: str, num_classes: int, in_channels: int = 3) -> tuple[torch.nn.Module, dict]:
    """`arch` (a MODELS name) with `num_classes` outputs and `in_channels` inputs, loaded from `path`
    (any of LAYOUTS), in eval mode, and {"sha256", "layout"} of the file."""
    path = Path(path)
    where = f"{arch} from {path}"
    try:
        # weights_only: a checkpoint from elsewhere is data, never code to run while unpickling
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several kinds; the one line says which
        raise ValueError(f"cannot load {where}: not a weights-only torch file ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    layout, state = _layout_of(content, where)
    if layout == "kdprune":
        recorded = (content["arch"], content["num_classes"], content["in_channels"])
        if recorded != (arch, num_classes, in_channels):
            raise ValueError(
                f"cannot load {where}: the file holds {recorded[0]} with {recorded[1]} classes and {recorded[2]} input channels, "
                f"not {arch} with {num_classes} and {in_channels}"
            )
    model = create_model(arch, num_classes, in_channels)
    state = _renamed(state, RENAMES.get(type(model), {}))
    _check_fits(model, state, where)
    model.load_state_dict(state)
    return model.eval(), {"sha256": sha256_of(path), "layout": layout}


def _layout_of(content, where: str) -> tuple[str, dict]:
    if isinstance(content, dict) and {"arch", "num_classes", "in_channels", "state_dict"} <= content.keys():
        return "kdprune", content["state_dict"]
    if isinstance(content, dict) and isinstance(content.get("model"), dict):
        return "repdistiller", content["model"]
    if isinstance(content, dict) and content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return "state_dict", content
    keys = ", ".join(map(str, list(content)[:6])) if isinstance(content, dict) else type(content).__name__
    raise ValueError(f"cannot load {where}: no state dict in it (a kdprune model.pt, a dict with `model`, or a state dict; found {keys})")


def _renamed(state: dict, names: dict[str, str]) -> dict:
    if not names:
        return state

    def rename(key: str) -> str:
        return ".".join(names.get(part, part) for part in key.split("."))

    out = OrderedDict((rename(k), v) for k, v in state.items())
    metadata = getattr(state, "_metadata", None)  # per-module versions (BatchNorm reads its own)
    if metadata is not None:
        out._metadata = type(metadata)((rename(k), v) for k, v in metadata.items())
    return out


def _check_fits(model: torch.nn.Module, state: dict, where: str) -> None:
    """One line on what in `state` does not fit `model`, if anything."""
    expected = model.state_dict()
    # BN's num_batches_tracked came with PyTorch 0.4.1; load_state_dict fills it in for older files
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(expected)} keys missing (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} keys it does not have (first {unexpected[0]})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of other shape (first {k}: {list(state[k].shape)} in the file, {list(expected[k].shape)} in the model)")
    raise ValueError(f"cannot load {where}: the weights do not fit the architecture: {'; '.join(parts)}")
