"""GraNd (Paul et al., 2021, "Deep Learning on a Data Diet"): the expected norm of the gradient of
a sample's loss, E_w ||grad_w l(f_w(x), y)||_2, taken at an early epoch of training and averaged
over K independent runs (different seeds). Higher = harder (keep-hardest keeps the top scores).

Two registered scores:

* `grand`: the paper's definition, the gradient with respect to ALL trainable parameters. Per-sample
  gradients come from torch.func (functional_call + vmap + grad), computed in chunks so that the
  per-sample gradients of one chunk stay near 2**26 floats (256 MB) whatever the model size.
* `grand_lastlayer`: DeepCore's cheaper variant (deepcore/methods/grand.py), the gradient with
  respect to the final linear layer only. For cross-entropy it has a closed form: with
  e = softmax(f(x)) - onehot(y) and h the penultimate embedding, grad_W = e h^T and grad_b = e,
  so the norm is ||e|| * sqrt(||h||^2 + 1) (EL2N times a per-sample embedding factor). That is
  DeepCore's criterion too: since its 2023-01-14 fix it takes the cross-entropy of the raw outputs
  (its earlier version fed softmax(outputs) to the cross-entropy, a second softmax).

Choices (config `scores.grand` / `scores.grand_lastlayer`): `arch`, `runs` (K), `epoch` (when to
score: each run follows the full-length schedule of `recipe` and stops after `epoch` epochs, as
for EL2N; `epoch: 0` scores at initialization, which the paper also reports), `recipe`. The loss is the un-regularised per-sample cross-entropy (no
weight decay term). Gradients are taken in eval mode, i.e. BatchNorm uses its running statistics
(a per-sample gradient is then a function of that sample alone; at initialization the running
statistics are the identity, mean 0 / var 1), on the un-augmented, normalised training images.
Run k uses seed `seed * 1000 + k`, the same as EL2N, so equal settings give equal trajectories."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from kdprune.pruning.runs import as_device, score_runs
from kdprune.train.accel import Accel
from kdprune.train.loop import Recipe

# Per-sample gradients of one chunk hold about this many floats.
CHUNK_FLOATS = 2**26


def per_sample_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """||grad_params CE(model(x_i), y_i)||_2 for every sample i, over all trainable parameters, with
    the model in eval mode. `x` is the model's (normalised, float) input."""
    model.eval()
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def sample_loss(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    grads_of = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    n_params = sum(p.numel() for p in params.values())
    chunk = chunk or max(1, CHUNK_FLOATS // n_params)
    out = []
    for i in range(0, len(x), chunk):
        grads = grads_of(params, x[i : i + chunk], y[i : i + chunk])
        squares = sum(g.double().pow(2).flatten(1).sum(1) for g in grads.values())
        out.append(squares.sqrt().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def last_layer_grad_norms(logits: torch.Tensor, embedding: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Closed form of ||grad_(W, b) CE(W h + b, y)||_2 per sample: ||e|| * sqrt(||h||^2 + 1) with
    e = softmax(logits) - onehot(y), h = embedding."""
    logits, embedding = logits.double(), embedding.double()
    error = F.softmax(logits, dim=1) - F.one_hot(targets, logits.shape[1]).double()
    return error.norm(dim=1) * (embedding.pow(2).sum(1) + 1.0).sqrt()


def _grand(data, settings: dict, seed: int, device, log, name: str, norms_of, accel: Accel) -> np.ndarray:
    total = torch.zeros(len(data.y_train), dtype=torch.float64)
    batch_size = Recipe.from_dict(settings["recipe"]).eval_batch_size
    for model, _ in score_runs(data, settings, seed, device, log, name, accel):
        # un-augmented, standardised training images in order
        norms = [norms_of(model, x, y).double().cpu() for x, y in data.eval_batches("train", batch_size, as_device(device))]
        total += torch.cat(norms)
    return (total / int(settings["runs"])).numpy()


def grand_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    return _grand(data, settings, seed, device, log, "grand", per_sample_grad_norms, accel)


def grand_lastlayer_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> np.ndarray:
    @torch.no_grad()
    def norms_of(model, x, y):
        embedding = model.features(x)
        return last_layer_grad_norms(model.fc(embedding), embedding, y)

    return _grand(data, settings, seed, device, log, "grand_lastlayer", norms_of, accel)
