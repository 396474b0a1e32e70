"""BiLP's adaptive ("dynamic") criterion: the causal effect of a real sample on the distillation (Xu
et al., ECCV 2024, "Distill Gold from Massive Ores", the individual treatment effect, ITE). The
authors' repository (silicx/GoldFromOres-BiLP) releases only the static criterion (`drop_utils`),
so everything here follows the paper's definition, not code.

The effect of real sample i of a class's batch is the L2 norm of the change of the gradient of
the distillation loss with respect to the class's synthetic images when i is left out of the batch:
ITE_i = || grad_S L(S; batch) - grad_S L(S; batch without i) ||. At a refresh the samples of the
batch in BOTH tails of the effect are dropped, `int(beta * n)` of the smallest (they contribute
nothing) and as many of the largest (outliers), `beta` per tail (so 2 beta of the batch in all);
`tails: small` or `large` drops only one end (the comparison behind P4-C4).

DM (`dm_causal_effects`), exact. The loss of a class is ||mu_r - mu_s||^2 with mu_r the mean
embedding of the n real images and mu_s = F(S) / m the mean of the m synthetic ones, F(S) = sum_j
f(s_j). Its gradient is J^T (2 / m) (mu_s - mu_r), J the Jacobian of F at S. Leaving x_i out
moves mu_r by (mu_r - f(x_i)) / (n - 1) and nothing else (each image is embedded alone: the ConvNet
has instance norm, no batch statistics), so the gradient moves by J^T u_i with u_i = (2 / m)
(f(x_i) - mu_r) / (n - 1): ITE_i = ||J^T u_i||, computed without approximation either as n
vector-Jacobian products (one vmap over the u_i) or, when the embedding is smaller than the batch
(d < n), from the d x d Gram matrix J J^T (d products): ||J^T u||^2 = u^T J J^T u.

DC (`dc_causal_effects`). The loss of a class is D(g_s(S), g_r): the matching distance between the
parameter gradient of the cross-entropy of the synthetic images, g_s(S), and that of the real batch,
g_r = mean_i h_i (h_i: sample i's own gradient; again exact per sample for the instance-norm
ConvNet). Its gradient w.r.t. S is J_s^T psi(g_r), J_s the Jacobian of g_s at S and psi(g_r) = dD/dg_s
at (g_s(S), g_r). Leaving x_i out moves g_r by t_i = (g_r - h_i) / (n - 1). First-order (the
default, as the issue asks): psi(g_r + t_i) - psi(g_r) is replaced by its linearisation dpsi/dg_r t_i
(one Jacobian-vector product per sample); what is approximated is only the dependence of the
distance's derivative on the real gradient, to first order in t_i, whose size is O(1 / n). With
`exact=True` the difference psi(g_r + t_i) - psi(g_r) is computed as it is, which makes the effect
the exact leave-one-out change; it costs the same (the n vector-Jacobian products through g_s, a
double backward each, dominate either way) and the per-sample gradients take n x (parameters) memory.

`CausalEffectFilter` is a `real_batch_filter` hook (kdprune.distill.synthetic.RealBatch): called with
a class's real batch, it returns the kept part (`batch.keep(positions)`). It reads from the batch:
`images` (standardised, before augmentation), `indices` (training-set indices), `cls`, `net` (the
iteration's network: DM embeds with `net.features`, DC differentiates its parameters), `method`
("dm" or "dc") and, on a refresh, `syn` (the class's synthetic images, required) and `augment`
(optional: a callable applying the step's Siamese DSA draw to a batch, the same draw the loss will
use; absent, the effect is computed on un-augmented images). Refreshing: the decision is a set of
training-set indices whose latest verdict was a tail (`dropped`); call t of a class (t = 0, 1, ...)
is a refresh when t is a multiple of `interval`: the batch is scored, its tails dropped and
recorded, its middle kept and cleared from the record. Other calls score nothing and drop the
batch's images that the record holds. DM calls the hook once per class and iteration (so `interval`
counts iterations), DC once per class and outer loop. A batch of fewer than two images is kept.
The record (`state_dict`, `load_state_dict`) travels in a distillation's checkpoint, so a resumed
run drops what the uninterrupted one would (kdprune.distill.resume).

Choices of this implementation (the paper gives none in code): `beta` is per tail, the refresh
counts calls per class, and a sample dropped at one refresh may come back at a later one when it is
scored again in a middle.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp, vjp, vmap

Match = Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor]  # (g_syn, g_real) -> distance


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@torch.no_grad()  # the torch.func transforms still differentiate; no graph to the network's parameters is kept
def dm_causal_effects(
    real_embeddings: torch.Tensor,
    syn: torch.Tensor,
    embed_syn: Callable[[torch.Tensor], torch.Tensor],
    chunk: int | None = None,
    gram: bool | None = None,
) -> torch.Tensor:
    """ITE of each real image of a DM batch: `real_embeddings` [n, d] are f(x_i) (augmented as the loss
    sees them), `embed_syn(S)` -> [m, d] embeds the class's synthetic images `syn` [m, ...] the way the
    loss does. `gram`: None chooses the cheaper exact route (Gram matrix when d < n), True/False forces it.
    `chunk`: vector-Jacobian products per vmap chunk (None: all at once)."""
    f = real_embeddings.detach()
    n, d = f.shape
    m = len(syn)
    if n < 2:
        raise ValueError(f"a leave-one-out effect needs at least two real images, got {n}")
    u = (f - f.mean(0)) * (2.0 / (m * (n - 1)))
    _, pull = vjp(lambda s: embed_syn(s).sum(0), syn.detach())
    use_gram = d < n if gram is None else gram
    if use_gram:
        (rows,) = vmap(pull, chunk_size=chunk)(torch.eye(d, dtype=f.dtype, device=f.device))  # row k: J^T e_k
        rows = rows.flatten(1)
        return ((u @ (rows @ rows.T)) * u).sum(1).clamp_min(0).sqrt()
    (moved,) = vmap(pull, chunk_size=chunk)(u)
    return moved.flatten(1).norm(dim=1)


@torch.no_grad()
def dc_causal_effects(
    net: torch.nn.Module,
    real: torch.Tensor,
    syn: torch.Tensor,
    cls: int,
    match: Match,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    exact: bool = False,
    chunk: int | None = None,
) -> torch.Tensor:
    """ITE of each real image of a DC batch of class `cls` (first order in the left-out sample's share of
    the real gradient; `exact`: the exact leave-one-out change). `match(g_syn, g_real)` is the matching
    distance over per-parameter gradient lists in `net.named_parameters()` order; `augment` the
    step's Siamese augmentation, applied to the real and the synthetic images."""
    augment = augment or _identity
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    names = list(params)
    x_real = augment(real.detach()).detach()
    n = len(x_real)
    if n < 2:
        raise ValueError(f"a leave-one-out effect needs at least two real images, got {n}")
    device = x_real.device

    def ce(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(net, (p, buffers), (x,)), y)

    one = torch.full((1,), cls, dtype=torch.long, device=device)
    per_sample = vmap(grad(lambda p, x: ce(p, x.unsqueeze(0), one)), in_dims=(None, 0), chunk_size=chunk)(params, x_real)
    g_real = {k: v.mean(0) for k, v in per_sample.items()}
    shift = {k: (g_real[k] - per_sample[k]) / (n - 1) for k in names}  # g_real without i, minus g_real
    y_syn = torch.full((len(syn),), cls, dtype=torch.long, device=device)

    def g_syn_of(s: torch.Tensor) -> dict:
        return grad(ce)(params, augment(s), y_syn)

    def psi(g_s: dict, g_r: dict) -> dict:  # dD/dg_syn
        return grad(lambda a: match([a[k] for k in names], [g_r[k] for k in names]))(g_s)

    g_syn, pull = vjp(g_syn_of, syn.detach())
    g_syn = {k: v.detach() for k, v in g_syn.items()}
    if exact:
        base = psi(g_syn, g_real)
        moved = vmap(lambda t: psi(g_syn, {k: g_real[k] + t[k] for k in names}), chunk_size=chunk)(shift)
        delta = {k: moved[k] - base[k] for k in names}
    else:
        delta = vmap(lambda t: jvp(lambda g_r: psi(g_syn, g_r), (g_real,), (t,))[1], chunk_size=chunk)(shift)
    (change,) = vmap(pull, chunk_size=chunk)(delta)
    return change.flatten(1).norm(dim=1)


TAILS = ("both", "small", "large")  # which ends of the effects are dropped (P4-C4: both vs one)


def two_tailed_keep(effects: torch.Tensor, beta: float, tails: str = "both") -> torch.Tensor:
    """Positions (ascending) of `effects` without the int(beta * n) smallest and the int(beta * n)
    largest (ties broken by position); `tails` small or large drops only that end."""
    if not 0.0 <= beta < 0.5:
        raise ValueError(f"beta = {beta!r} is not allowed: the share dropped at each tail must be in [0, 0.5)")
    if tails not in TAILS:
        raise ValueError(f"tails = {tails!r} is not allowed; allowed: {', '.join(TAILS)}")
    n = len(effects)
    cut = int(beta * n)
    low = cut if tails in ("both", "small") else 0
    high = n - cut if tails in ("both", "large") else n
    order = torch.argsort(effects.detach().cpu(), stable=True)
    return order[low:high].sort().values


class CausalEffectFilter:
    """The `real_batch_filter` of BiLP's causal-effect pruning (module docstring: interface, refresh).
    `match`: DC's distance (None: kdprune.distill.dc.match_loss with 'ours'); `exact`: DC's exact
    leave-one-out instead of first order; `chunk`: vmap chunk size (memory)."""

    def __init__(
        self, beta: float, interval: int = 1, *, tails: str = "both", match: Match | None = None, exact: bool = False, chunk: int | None = None
    ):
        if not 0.0 <= beta < 0.5:
            raise ValueError(f"beta = {beta!r} is not allowed: the share dropped at each tail must be in [0, 0.5)")
        if int(interval) < 1:
            raise ValueError(f"interval = {interval!r} is not allowed: refresh every interval >= 1 calls")
        if tails not in TAILS:
            raise ValueError(f"tails = {tails!r} is not allowed; allowed: {', '.join(TAILS)}")
        self.beta, self.interval, self.tails = float(beta), int(interval), tails
        self.match, self.exact, self.chunk = match, exact, chunk
        self.dropped: set[int] = set()  # training-set indices whose latest verdict was a tail
        self.calls: dict[int, int] = {}  # per class
        self.refreshes = 0
        self.seconds = 0.0  # time spent scoring effects (the criterion's overhead)

    def __call__(self, batch):
        call = self.calls.get(batch.cls, 0)
        self.calls[batch.cls] = call + 1
        ids = [int(i) for i in batch.indices]
        if call % self.interval:
            return batch.keep(torch.tensor([p for p, i in enumerate(ids) if i not in self.dropped], dtype=torch.long))
        if len(ids) < 2:
            return batch
        start = time.perf_counter()
        kept = two_tailed_keep(self.effects(batch), self.beta, self.tails)
        self.seconds += time.perf_counter() - start
        middle = set(kept.tolist())
        for p, i in enumerate(ids):
            if p in middle:
                self.dropped.discard(i)
            else:
                self.dropped.add(i)
        self.refreshes += 1
        return batch.keep(kept)

    def config(self) -> dict:
        """What decides its verdicts (part of a resumed distillation's identity, kdprune.distill.resume)."""
        match = self.match and f"{self.match.__module__}.{self.match.__qualname__}"
        return {"beta": self.beta, "interval": self.interval, "tails": self.tails, "exact": self.exact, "chunk": self.chunk, "match": match}

    def state_dict(self) -> dict:
        """Its record (plain ints, a float: a checkpoint loads with weights_only)."""
        return {"dropped": sorted(self.dropped), "calls": dict(self.calls), "refreshes": self.refreshes, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.dropped = {int(i) for i in state["dropped"]}
        self.calls = {int(c): int(n) for c, n in state["calls"].items()}
        self.refreshes, self.seconds = int(state["refreshes"]), float(state["seconds"])

    def effects(self, batch) -> torch.Tensor:
        """The ITE of every image of the batch."""
        syn = getattr(batch, "syn", None)
        if syn is None:
            raise ValueError("the causal-effect filter needs the class's synthetic images: the distiller must pass them as RealBatch.syn")
        augment = getattr(batch, "augment", None) or _identity
        syn = syn.detach()
        if batch.method == "dm":
            embed = batch.net.features
            with torch.no_grad():
                f = embed(augment(batch.images))
            return dm_causal_effects(f, syn, lambda s: embed(augment(s)), self.chunk)
        if batch.method == "dc":
            match = self.match
            if match is None:
                from kdprune.distill.dc import match_loss as match
            return dc_causal_effects(batch.net, batch.images, syn, batch.cls, match, augment, self.exact, self.chunk)
        raise ValueError(f"method = {batch.method!r} is not allowed for the causal-effect filter; allowed: dm, dc")
