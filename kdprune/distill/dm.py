"""Distribution Matching (DM; Zhao & Bilen, WACV 2023), as VICO-UoE/DatasetCondensation `main_DM.py`
runs it with the ConvNet (BiLP's fork runs the same file after dropping real images).

Per iteration (iterations + 1 of them, `range(Iteration + 1)` in the original) a newly initialised
ConvNet whose parameters are never trained (no gradients); its `features` (the flattened output of
the convolutional body, the original's `embed`) embed the images. For every class c: a random real
batch of the class (`batch_real` images; all of the class if fewer) and the class's synthetic
images, with DSA (on by default) one Siamese draw applied to both; the loss adds the squared L2
distance between the mean real embedding (no gradient) and the mean synthetic embedding. One SGD
step on the synthetic images (lr_img 1.0, momentum 0.5) on the sum over classes. The history holds
each iteration's loss divided by the number of classes (the original's `loss_avg`).

`real_batch_filter` (setting; default: keep the whole batch): each class's real batch passes
through it before DSA and the embedding (kdprune.distill.synthetic.RealBatch).

Deviations from the original:

- Seeded randomness (kdprune.distill.synthetic): network initialisation, real batches and DSA draws
  come from generators derived from `seed`, not from time-based seeds.
- The network is always the ConvNet (`net_width`, `net_depth`: 128 and 3, the original's default):
  the original's separate ConvNetBN branch (all classes embedded in one batch) is not implemented.
- The real embeddings are computed under `torch.no_grad()` (the original detaches them afterwards:
  the same values, less memory).
"""

from __future__ import annotations

import torch

from kdprune.distill import CONVNET_DEPTH, CONVNET_WIDTH, DISTILLERS
from kdprune.distill.dsa import DEFAULT_STRATEGY, DSAParams
from kdprune.distill.resume import Checkpoint, Loop, iterate, run_key
from kdprune.distill.synthetic import RealPool, distilled, fresh_network, generators, initial_images, matched_batches, settings_of

DEFAULTS = {
    "iterations": 20000,
    "lr_img": 1.0,
    "momentum_img": 0.5,
    "batch_real": 256,
    "init": "real",
    "dsa": DISTILLERS.meta("dm")["dsa"],
    "dsa_strategy": DEFAULT_STRATEGY,
    "net_width": CONVNET_WIDTH,
    "net_depth": CONVNET_DEPTH,
    "real_batch_filter": None,  # callable RealBatch -> RealBatch; None: keep all
    "log_every": 10,
}


def embedding_match(net: torch.nn.Module, x_real: torch.Tensor, x_syn: torch.Tensor) -> torch.Tensor:
    """One class's matching loss: the squared L2 distance between the mean embedding (`net.features`)
    of the real images (no gradient) and that of the synthetic images."""
    with torch.no_grad():
        mean_real = net.features(x_real).mean(0)
    return ((mean_real - net.features(x_syn).mean(0)) ** 2).sum()


def dm_update(pool: RealPool, image_syn: torch.Tensor, optimizer_img, ipc: int, iteration: int, settings: dict, gen: dict, params) -> float:
    """One iteration: a fresh, untrained ConvNet; every class matched once; one SGD step on the
    synthetic images. Returns the loss summed over the classes."""
    net = fresh_network(pool, settings, gen["net"])
    net.requires_grad_(False)
    loss = torch.zeros((), device=image_syn.device)
    for c in range(pool.num_classes):
        x_real, x_syn = matched_batches(pool, image_syn, c, ipc, net, iteration, "dm", settings, gen, params)
        loss = loss + embedding_match(net, x_real, x_syn)
    optimizer_img.zero_grad()
    loss.backward()
    optimizer_img.step()
    return loss.item()


def distill_dm(real, subset, ipc: int, settings: dict | None, seed: int, device, log=print, checkpoint: Checkpoint | None = None) -> dict:
    """Distil `ipc` images per class from the training images `subset` of `real` by matching mean
    embeddings; with `checkpoint`, resumable (kdprune.distill.resume)."""
    s = settings_of(DEFAULTS, settings, log)
    device = torch.device(device if device is not None else "cpu")
    gen = generators(seed, "data", "net", "dsa")
    params = DSAParams()
    strategy = s["dsa_strategy"] if s["dsa"] else None

    pool = RealPool(real, subset, device)
    images, labels = initial_images(pool, ipc, s["init"], gen["data"])
    image_syn = images.detach().clone().requires_grad_(True)
    optimizer_img = torch.optim.SGD([image_syn], lr=s["lr_img"], momentum=s["momentum_img"])
    loop = Loop(image_syn, optimizer_img, gen, s["real_batch_filter"])
    log(f"dm: {pool.num_classes} classes x {ipc} ipc from {len(pool.labels)} real images; dsa {strategy or 'off'}")

    def step(it: int) -> float:
        return dm_update(pool, image_syn, optimizer_img, ipc, it, s, gen, params) / pool.num_classes

    iterate("dm", step, loop, s, run_key("dm", real, subset, ipc, seed, s), checkpoint, log)
    return distilled("dm", loop, labels, ipc, seed, s)
