"""SGD (momentum, Nesterov, L2 weight decay) whose learning rate lives in a device tensor.

torch.optim.SGD reads its learning rate as a Python float (a tensor lr is turned into one with
`.item()`), so a CUDA graph captured around its step would replay the lr of the capture forever.
Here the lr is a 0-d tensor that the step reads on the device: `set_lr` writes the schedule's value
before each step or replay, and the captured graph sees it. Gradients and momentum buffers are
allocated once, up front, so eager steps and graph replays update the very same tensors.

Same update as torch.optim.SGD with dampening 0 (the only setting the recipes use):
    d = g + wd * p;  b = momentum * b + d;  d = d + momentum * b (Nesterov) or b;  p -= lr * d
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class SGD:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("SGD: no trainable parameters")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        device = self.params[0].device
        self.lr = torch.tensor(float(lr), dtype=torch.float32, device=device)
        # A zero buffer gives the first step b = g, which is what torch's lazy clone(g) gives.
        self.buffers = [torch.zeros_like(p) for p in self.params] if momentum else []
        for p in self.params:
            p.grad = torch.zeros_like(p)

    def set_lr(self, value: float) -> None:
        self.lr.fill_(value)  # an asynchronous device write, no host sync

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        d = torch._foreach_add(grads, self.params, alpha=self.weight_decay) if self.weight_decay else grads
        if self.momentum:
            torch._foreach_mul_(self.buffers, self.momentum)
            torch._foreach_add_(self.buffers, d)
            d = torch._foreach_add(d, self.buffers, alpha=self.momentum) if self.nesterov else self.buffers
        torch._foreach_sub_(self.params, torch._foreach_mul(d, self.lr))

    @torch.no_grad()
    def zero_grad(self) -> None:
        torch._foreach_zero_([p.grad for p in self.params])  # in place: the addresses stay valid

    def state_dict(self) -> dict:
        return {"kind": "kdprune.SGD", "lr": float(self.lr), "momentum_buffers": [b.detach().clone() for b in self.buffers]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "kdprune.SGD" or len(state["momentum_buffers"]) != len(self.buffers):
            raise ValueError("optimizer state was not written by kdprune.SGD for these parameters")
        for buf, saved in zip(self.buffers, state["momentum_buffers"]):
            buf.copy_(saved)
        self.set_lr(state["lr"])
