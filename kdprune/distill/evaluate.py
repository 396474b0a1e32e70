"""Evaluation of a distilled (synthetic) set, the protocol of DC, DSA and DM (VICO-UoE/DatasetCondensation,
`utils.py` `evaluate_synset` and `epoch`, called from `main.py` / `main_DM.py`): train `num_eval`
freshly initialised ConvNets on the synthetic images alone and report each one's test accuracy, and
their mean and standard deviation (numpy's, ddof 0, as the original prints them). The paper protocol
repeats this for each of `num_exp` distilled sets (5 x 20 models) and pools the accuracies: the
caller runs one evaluation per distilled set and pools the `accs`.

Training of one model, as `evaluate_synset` does it:

- SGD with `lr` (0.01), `momentum` (0.9), `weight_decay` (5e-4), cross-entropy, batches of `batch`
  (256) drawn from a fresh shuffle of the synthetic set every pass, the last batch of a pass smaller
  when the set does not divide;
- `epochs` + 1 passes (the original loops `for ep in range(Epoch + 1)`); after pass `epochs // 2 + 1`
  the learning rate is multiplied by 0.1 and the optimizer is built anew, so its momentum starts
  from zero (the original's `lr_schedule = [Epoch // 2 + 1]`); `pass_lrs` lists the rates;
- each training batch goes through `augment(x, generator)` when given (DSA: a per-image,
  non-Siamese draw, the original's `DiffAugment(img, strategy, param=dsa_param)`); `epochs` is 300
  for DC without augmentation and 1000 with DSA or DM (the callers' choice, as in `main.py`);
- test accuracy on the whole test split (standardised like the training set; batches of
  `test_batch`, 256), the model in eval mode, argmax of the logits (the first of tied maxima).

Settings: epochs, lr, momentum, weight_decay, batch, num_eval, augment (callable or None); optional:
`width` and `depth` of the ConvNet (default 128 and 3, the original's `get_default_convnet_setting`),
`test_batch` (256), `path` ("stacked", the default, or "plain") and `stack` (models per stacked
group; default all `num_eval`).

Two paths that compute the same thing. `plain`: the reference, one model after another, each an
ordinary module. `stacked`: the models of a group as one network, their parameters stacked along a
leading axis and the forward pass vectorised over it (torch.func.functional_call under vmap; one
SGD over the stacked parameters is one SGD per model, since its update is elementwise); model k
still draws exactly its own shuffles and augmentations, so the two paths differ only by floating
point rounding (tests/distill/test_evaluate.py checks equal accuracies on digits).

Randomness: model k (k = 0 .. num_eval - 1) of seed s gets two seeds from
numpy.random.SeedSequence([s, k]): one initialises its weights (PyTorch's default initialisation,
under torch.random.fork_rng so the global RNG is left as it was), one seeds a CPU torch.Generator
that draws its shuffles and is handed to `augment` (which must draw all of its randomness from it).
On the CPU an evaluation of a fixed synthetic set repeats exactly.

Deviations from the original:

- Seeded randomness (above) where the original seeds each network with the clock
  (`get_network`: `torch.random.manual_seed(int(time.time() * 1000) % 100000)`) and draws shuffles
  and augmentations from the global RNGs.
- Only the ConvNet is evaluated (the original's `eval_mode 'S'` / 'SS' with `model ConvNet`); the
  DC augmentation for other datasets or models (`get_daparam`: MNIST's crop_scale_rotate,
  ConvNetBN's crop_noise) is whatever callable the caller passes as `augment`.
- The synthetic labels are used as given (hard labels, as the original); the training accuracy and
  loss that the original prints are not recorded.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from kdprune.distill import CONVNET_DEPTH, CONVNET_WIDTH
from kdprune.models import create_model

PATHS = ("stacked", "plain")
TEST_BATCH = 256  # the original's testloader batch size


def pass_lrs(epochs: int, lr: float) -> list[float]:
    """The learning rate of every training pass: epochs + 1 passes, x0.1 after pass epochs // 2 + 1."""
    step = epochs // 2 + 1
    return [lr if p <= step else lr * 0.1 for p in range(epochs + 1)]


def model_seeds(seed: int, k: int) -> tuple[int, int]:
    """(weight initialisation seed, data generator seed) of model k of an evaluation with `seed`."""
    init, data = np.random.SeedSequence([int(seed), int(k)]).generate_state(2, dtype=np.uint64)
    return int(init) >> 1, int(data) >> 1  # below 2**63: what torch's seeding accepts


def fresh_models(ks: range, seed: int, num_classes: int, in_channels: int, image_size: int, settings: dict, device, dtype) -> list[torch.nn.Module]:
    """Models ks of the evaluation, freshly initialised, on `device` in `dtype`, in train mode."""
    models = []
    for k in ks:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(model_seeds(seed, k)[0])
            net = create_model(
                "ConvNet",
                num_classes,
                in_channels,
                image_size=image_size,
                width=int(settings.get("width", CONVNET_WIDTH)),
                depth=int(settings.get("depth", CONVNET_DEPTH)),
            )
        models.append(net.to(device=device, dtype=dtype).train())
    return models


def _optimizer(params, lr: float, settings: dict) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=float(settings["momentum"]), weight_decay=float(settings["weight_decay"]))


def _batches(n: int, batch: int) -> list[slice]:
    return [slice(start, min(start + batch, n)) for start in range(0, n, batch)]


def train_plain(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: dict, generator: torch.Generator) -> None:
    """Train one model in place on the synthetic set (the reference path)."""
    augment: Callable | None = settings.get("augment")
    lrs = pass_lrs(int(settings["epochs"]), float(settings["lr"]))
    optimizer = None
    for p, lr in enumerate(lrs):
        if p == 0 or lr != lrs[p - 1]:
            optimizer = _optimizer(model.parameters(), lr, settings)  # a new optimizer: momentum from zero
        order = torch.randperm(len(images), generator=generator).to(images.device)
        for part in _batches(len(images), int(settings["batch"])):
            x, y = images[order[part]], labels[order[part]]
            if augment is not None:
                x = augment(x, generator)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


class Stack:
    """Models of one architecture as one network: stacked parameters [K, ...] and a vectorised forward."""

    def __init__(self, models: list[torch.nn.Module]):
        self.params, self.buffers = stack_module_state(models)  # fresh leaf tensors, requires_grad
        self.base = copy.deepcopy(models[0]).to("meta")
        self.size = len(models)

    def _one(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Logits [K, B, classes] of [K, B, ...] inputs (model k reads x[k]), or of one [B, ...] batch that every model reads."""
        return vmap(self._one, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> Stack:
        self.base.train(mode)
        return self

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        both = {**self.params, **self.buffers}
        return [{name: value[k].detach().clone() for name, value in both.items()} for k in range(self.size)]


def train_stacked(stack: Stack, images: torch.Tensor, labels: torch.Tensor, settings: dict, generators: list[torch.Generator]) -> None:
    """Train every model of `stack` in place, model k with generators[k], each drawing what it would draw alone."""
    augment: Callable | None = settings.get("augment")
    lrs = pass_lrs(int(settings["epochs"]), float(settings["lr"]))
    params = list(stack.params.values())
    stack.train()
    optimizer = None
    for p, lr in enumerate(lrs):
        if p == 0 or lr != lrs[p - 1]:
            optimizer = _optimizer(params, lr, settings)
        orders = [torch.randperm(len(images), generator=g).to(images.device) for g in generators]
        for part in _batches(len(images), int(settings["batch"])):
            xs = [images[order[part]] for order in orders]
            if augment is not None:
                xs = [augment(x, g) for x, g in zip(xs, generators)]
            y = torch.stack([labels[order[part]] for order in orders])
            logits = stack(torch.stack(xs))
            # the sum of the models' own mean losses: model k's gradient is its gradient alone
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@torch.no_grad()
def accuracies_on_test(forward: Callable[[torch.Tensor], torch.Tensor], data, device, dtype, batch: int) -> list[float]:
    """Test accuracy of each model behind `forward` ([B, ...] images -> [K, B, classes] logits)."""
    norm = data.normalizer(device)
    correct = None
    for start in range(0, len(data.y_test), batch):
        x = norm(data.x_test[start : start + batch].to(device)).to(dtype)
        hits = (forward(x).argmax(-1) == data.y_test[start : start + batch].to(device)).sum(-1)
        correct = hits if correct is None else correct + hits
    return (correct.double() / len(data.y_test)).tolist()


def train_models(images: torch.Tensor, labels: torch.Tensor, data, settings: dict, seed: int, device) -> list:
    """The trained models of an evaluation: for each group, ("plain", [module]) or ("stacked", Stack)."""
    path = settings.get("path", "stacked")
    if path not in PATHS:
        raise ValueError(f"evaluation path = {path!r} is not allowed; allowed: {', '.join(PATHS)}")
    device = torch.device(device if device is not None else "cpu")
    images, labels = images.detach().to(device), labels.to(device=device, dtype=torch.int64)
    num_eval = int(settings["num_eval"])
    group = 1 if path == "plain" else int(settings.get("stack") or num_eval)
    if num_eval < 1 or group < 1:
        raise ValueError(f"evaluation needs num_eval >= 1 and stack >= 1, got {num_eval} and {group}")
    shape = (data.num_classes, data.channels, data.image_size)
    trained = []
    for first in range(0, num_eval, group):
        ks = range(first, min(first + group, num_eval))
        models = fresh_models(ks, seed, *shape, settings, device, images.dtype)
        gens = [torch.Generator().manual_seed(model_seeds(seed, k)[1]) for k in ks]
        if path == "plain":
            train_plain(models[0], images, labels, settings, gens[0])
            trained.append(("plain", models[0]))
        else:
            stack = Stack(models)
            train_stacked(stack, images, labels, settings, gens)
            trained.append(("stacked", stack))
    return trained


def evaluate_synthetic(images: torch.Tensor, labels: torch.Tensor, data, settings: dict, seed: int, device, log=print) -> dict:
    """Train `num_eval` fresh ConvNets on the synthetic set (images in the normalised space, int64
    labels) and test them on `data`'s test split: {"accs", "mean", "std", "train_seconds", ...}."""
    device = torch.device(device if device is not None else "cpu")
    start = time.perf_counter()
    trained = train_models(images, labels, data, settings, seed, device)
    seconds = time.perf_counter() - start
    batch = int(settings.get("test_batch", TEST_BATCH))
    accs: list[float] = []
    for kind, model in trained:
        if kind == "plain":
            model.eval()
            accs += accuracies_on_test(lambda x, m=model: m(x).unsqueeze(0), data, device, images.dtype, batch)
        else:
            model.train(False)
            accs += accuracies_on_test(lambda x, s=model: s(x, shared=True), data, device, images.dtype, batch)
    result = {
        "accs": accs,
        "mean": float(np.mean(accs)),
        "std": float(np.std(accs)),
        "train_seconds": seconds,
        "passes": int(settings["epochs"]) + 1,
        "num_eval": len(accs),
        "path": settings.get("path", "stacked"),
        "seed": seed,
    }
    log(
        f"evaluate: {len(images)} synthetic images, {len(accs)} ConvNets x {result['passes']} passes ({result['path']}): "
        f"test acc {100 * result['mean']:.2f} +- {100 * result['std']:.2f} % (train {seconds:.1f}s)"
    )
    return result
