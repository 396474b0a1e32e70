"""Dataset Condensation with gradient matching (DC; Zhao, Mopuri & Bilen, ICLR 2021), and with
`dsa: true` its DSA variant (Zhao & Bilen, ICML 2021), as VICO-UoE/DatasetCondensation `main.py`
runs it (BiLP's fork runs the same file after dropping real images).

Per iteration (iterations + 1 of them, `range(Iteration + 1)` in the original) a newly initialised
ConvNet, then `outer_loop` times:

1. for every class c: a random real batch of the class (`batch_real` images; all of the class if
   fewer) and the class's synthetic images; with DSA, one Siamese draw applied to both; the
   gradients of the cross-entropy of each w.r.t. the network's parameters (the synthetic one with
   its graph kept); their distance `match_loss`, summed over the classes;
2. one SGD step on the synthetic images (lr_img 0.1, momentum 0.5) on that sum;
3. except after the last outer loop: `inner_loop` epochs of SGD (lr_net 0.01, no momentum) training
   the network on a copy of the synthetic set, shuffled, batches of `batch_train` (the original's
   `epoch('train', ...)`), with a per-image DSA draw on each batch when `dsa`.

The history holds each iteration's loss summed over the outer loops, divided by classes x outer
loops (the original's `loss_avg`).

`match_loss` with `dis_metric` 'ours' (the default; `distance_wb`): for each parameter tensor,
flattened to (output channels, rest) (a linear layer's weight as it is), the sum over output
channels of 1 - cos(g_real, g_syn) (with 1e-6 added to the product of the norms), summed over the
tensors; one-dimensional tensors (biases, norm scales) count 0. 'mse': the squared distance of the
concatenated gradients; 'cos': 1 - their cosine.

`real_batch_filter` (setting; default: keep the whole batch): each class's real batch passes
through it before DSA and the gradient (kdprune.distill.synthetic.RealBatch; it sees the network
as the inner loop has trained it so far).

Deviations from the original:

- Seeded randomness (kdprune.distill.synthetic): the network initialisation, real batches, shuffles
  and DSA draws come from generators derived from `seed`, not from time-based seeds.
- The network is always the ConvNet (`net_width`, `net_depth`: 128 and 3, the original's default);
  the original's BatchNorm handling (freezing BN statistics on a real batch first) is not needed
  for it and not implemented.
- A loop-count table entry missing for an IPC (the original exits) can be set with `outer_loop` and
  `inner_loop`; without them it is an error.
- `init` defaults to 'noise' as in `main.py` and BiLP's DC command; the DSA README commands pass
  `--init real`, which is `init: real` here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdprune.distill import CONVNET_DEPTH, CONVNET_WIDTH, DISTILLERS
from kdprune.distill.dsa import DEFAULT_STRATEGY, DSAParams, apply, draw
from kdprune.distill.resume import Checkpoint, Loop, iterate, run_key
from kdprune.distill.synthetic import RealPool, distilled, fresh_network, generators, initial_images, matched_batches, settings_of

# Outer and inner loop counts per IPC (the original's get_loops)
LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}

DEFAULTS = {
    "iterations": 1000,
    "lr_img": 0.1,
    "momentum_img": 0.5,
    "lr_net": 0.01,
    "batch_real": 256,
    "batch_train": 256,
    "init": "noise",
    "dsa": DISTILLERS.meta("dc")["dsa"],
    "dsa_strategy": DEFAULT_STRATEGY,
    "outer_loop": None,  # None: LOOPS[ipc]
    "inner_loop": None,
    "dis_metric": "ours",
    "net_width": CONVNET_WIDTH,
    "net_depth": CONVNET_DEPTH,
    "real_batch_filter": None,  # callable RealBatch -> RealBatch; None: keep all
    "log_every": 10,
}


def get_loops(ipc: int) -> tuple[int, int]:
    """(outer_loop, inner_loop) for `ipc` images per class."""
    if ipc not in LOOPS:
        raise ValueError(f"DC has no loop counts for ipc {ipc} (known: {sorted(LOOPS)}); set outer_loop and inner_loop")
    return LOOPS[ipc]


def distance_wb(g_real: torch.Tensor, g_syn: torch.Tensor) -> torch.Tensor:
    """Sum over output channels of 1 - cosine of one parameter's two gradients; 0 for 1-d tensors."""
    if g_real.dim() == 1:
        return torch.zeros((), device=g_real.device)
    if g_real.dim() != 2:  # conv: out x in x h x w; layer norm: c x h x w
        g_real, g_syn = g_real.flatten(1), g_syn.flatten(1)
    cos = (g_real * g_syn).sum(-1) / (g_real.norm(dim=-1) * g_syn.norm(dim=-1) + 1e-6)
    return (1 - cos).sum()


def match_loss(g_syn, g_real, dis_metric: str = "ours") -> torch.Tensor:
    """Distance between two lists of per-parameter gradients (the original's match_loss)."""
    if dis_metric == "ours":
        return sum((distance_wb(r, s) for r, s in zip(g_real, g_syn, strict=True)), torch.zeros((), device=g_real[0].device))
    real = torch.cat([g.reshape(-1) for g in g_real])
    syn = torch.cat([g.reshape(-1) for g in g_syn])
    if dis_metric == "mse":
        return ((syn - real) ** 2).sum()
    if dis_metric == "cos":
        return 1 - (real * syn).sum() / (real.norm() * syn.norm() + 1e-6)
    raise ValueError(f"dis_metric {dis_metric!r} is not allowed; allowed: ours, mse, cos")


def gradient_match(net: torch.nn.Module, x_real: torch.Tensor, x_syn: torch.Tensor, c: int, dis_metric: str = "ours") -> torch.Tensor:
    """One class's matching loss: the distance between the gradients (w.r.t. the network's
    parameters) of the cross-entropy of class c on the real and on the synthetic images; the
    synthetic gradient keeps its graph, so the loss reaches `x_syn`."""
    net_params = list(net.parameters())
    y_real = torch.full((len(x_real),), c, dtype=torch.long, device=x_real.device)
    g_real = [g.detach() for g in torch.autograd.grad(F.cross_entropy(net(x_real), y_real), net_params)]
    y_syn = torch.full((len(x_syn),), c, dtype=torch.long, device=x_syn.device)
    g_syn = torch.autograd.grad(F.cross_entropy(net(x_syn), y_syn), net_params, create_graph=True)
    return match_loss(g_syn, g_real, dis_metric)


def train_on_synthetic(net, optimizer, images, labels, batch_size, epochs, dsa_strategy, shuffle, augment_gen, params: DSAParams) -> None:
    """`epochs` passes of SGD over the (shuffled) synthetic set, a per-image DSA draw on each batch
    when `dsa_strategy` is set (the original's epoch('train', ..., aug=dsa))."""
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=shuffle).to(images.device)
        for i in range(0, len(order), batch_size):
            x, y = images[order[i : i + batch_size]], labels[order[i : i + batch_size]]
            if dsa_strategy:
                x = apply(x, draw(dsa_strategy, len(x), x.shape[2], x.shape[3], augment_gen, params), params)
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def distill_dc(real, subset, ipc: int, settings: dict | None, seed: int, device, log=print, checkpoint: Checkpoint | None = None) -> dict:
    """Distil `ipc` images per class from the training images `subset` of `real` by gradient
    matching; with `checkpoint`, resumable (kdprune.distill.resume)."""
    s = settings_of(DEFAULTS, settings, log)
    if (s["outer_loop"] is None) != (s["inner_loop"] is None):
        raise ValueError("set both outer_loop and inner_loop, or neither")
    outer, inner = (s["outer_loop"], s["inner_loop"]) if s["outer_loop"] is not None else get_loops(ipc)
    device = torch.device(device if device is not None else "cpu")
    gen = generators(seed, "data", "net", "dsa", "shuffle")
    params = DSAParams()
    strategy = s["dsa_strategy"] if s["dsa"] else None

    pool = RealPool(real, subset, device)
    images, labels = initial_images(pool, ipc, s["init"], gen["data"])
    image_syn = images.detach().clone().requires_grad_(True)
    labels_dev = labels.to(device)
    optimizer_img = torch.optim.SGD([image_syn], lr=s["lr_img"], momentum=s["momentum_img"])
    loop = Loop(image_syn, optimizer_img, gen, s["real_batch_filter"])
    log(f"dc: {pool.num_classes} classes x {ipc} ipc from {len(pool.labels)} real images; loops {outer}/{inner}, dsa {bool(s['dsa'])}")

    def step(it: int) -> float:
        net = fresh_network(pool, s, gen["net"])
        optimizer_net = torch.optim.SGD(net.parameters(), lr=s["lr_net"])
        loss_sum = 0.0
        for ol in range(outer):
            loss = torch.zeros((), device=device)
            for c in range(pool.num_classes):
                x_real, x_syn = matched_batches(pool, image_syn, c, ipc, net, it, "dc", s, gen, params)
                loss = loss + gradient_match(net, x_real, x_syn, c, s["dis_metric"])
            optimizer_img.zero_grad()
            loss.backward()
            optimizer_img.step()
            loss_sum += loss.item()
            if ol == outer - 1:
                break
            train_on_synthetic(
                net, optimizer_net, image_syn.detach().clone(), labels_dev, s["batch_train"], inner, strategy, gen["shuffle"], gen["dsa"], params
            )
        return loss_sum / (pool.num_classes * outer)

    iterate("dc", step, loop, s, run_key("dc", real, subset, ipc, seed, s), checkpoint, log)
    return distilled("dc", loop, labels, ipc, seed, s)
