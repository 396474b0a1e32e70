"""N CIFAR ResNets of one architecture trained at once as one network.

The grid trains many students of the same architecture. On a GPU each of their small steps
(batch 64, a CIFAR ResNet) is bound by kernel launches, not by arithmetic, so N students stepping
one after the other cost about N times one step. Stacking them makes one wide step instead:
every convolution becomes one grouped convolution (groups=N), every BatchNorm one BatchNorm over
N times the channels, and the classifier one batched matmul. The students stay independent:
student k sees only its own batch x[k] (channel block k), keeps its own BN statistics, affine
parameters and running stats, and gets the gradient of its own loss (see `per_student_terms`).
One optimizer over the stacked parameters is N optimizers, because SGD with momentum, Nesterov
and weight decay acts elementwise.

Build with `StackedCifarResNet.from_models(models)`, get the students back with `unstack()`;
`kdprune.train.loop.fit_stack` trains a stack (the workflow's `stack_seeds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from kdprune.models.resnet_cifar import CifarResNet

Objective = Callable[..., dict[str, torch.Tensor]]


def _grouped_conv(n: int, in_planes: int, planes: int, kernel: int, stride: int, padding: int = 0) -> nn.Conv2d:
    # groups=n: output channel block k only reads input channel block k, i.e. student k's own features.
    return nn.Conv2d(n * in_planes, n * planes, kernel, stride, padding, groups=n, bias=False)


class StackedLinear(nn.Module):
    """N independent Linear layers, [N, B, in] -> [N, B, out], as one batched matmul."""

    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default range
        self.weight = nn.Parameter(torch.empty(n, out_features, in_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedBasicBlock(nn.Module):
    """N BasicBlocks side by side; same attribute names, so state_dict keys match BasicBlock's."""

    def __init__(self, n: int, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = _grouped_conv(n, in_planes, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(n * planes)  # per channel, so per student
        self.conv2 = _grouped_conv(n, planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(n * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(_grouped_conv(n, in_planes, planes, 1, stride), nn.BatchNorm2d(n * planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _signature(model: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    # Names and shapes of all parameters and buffers pin down a CifarResNet: depth, widths,
    # classes and input channels (a block's stride follows from its position).
    return [(key, tuple(value.shape), value.dtype) for key, value in model.state_dict().items()]


class StackedCifarResNet(nn.Module):
    """`n_models` CifarResNets as one network: [N, B, C, H, W] images -> [N, B, classes] logits.
    Usually built with `from_models`; the constructor mirrors CifarResNet's."""

    def __init__(self, n_models: int, depth: int, widths: tuple[int, int, int, int], num_classes: int, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        self.n_models = n_models
        n = (depth - 2) // 6
        self.conv1 = _grouped_conv(n_models, in_channels, widths[0], 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(n_models * widths[0])
        planes = widths[0]
        stages = []
        for i, width in enumerate(widths[1:]):
            blocks = []
            for j in range(n):
                blocks.append(StackedBasicBlock(n_models, planes, width, stride=2 if (i > 0 and j == 0) else 1))
                planes = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = StackedLinear(n_models, planes, num_classes)

    @classmethod
    def from_models(cls, models: Sequence[CifarResNet]) -> StackedCifarResNet:
        """Stack copies of `models` (all one architecture): parameters, running stats, counters."""
        if not models:
            raise ValueError("from_models needs at least one model")
        for i, model in enumerate(models):
            if not isinstance(model, CifarResNet):
                raise ValueError(f"model {i} is a {type(model).__name__}, not a CifarResNet")
        reference = _signature(models[0])
        for i, model in enumerate(models[1:], start=1):
            if _signature(model) != reference:
                raise ValueError(
                    f"model {i} has a different architecture from model 0 (depth, widths, "
                    "classes or input channels); stacked models must all share one"
                )
        first = models[0]
        stages = (first.layer1, first.layer2, first.layer3)
        widths = (first.conv1.out_channels, *(stage[0].conv1.out_channels for stage in stages))
        stacked = cls(len(models), 6 * len(first.layer1) + 2, widths, first.fc.out_features, first.conv1.in_channels)
        states = [model.state_dict() for model in models]
        merged = {}
        for key in stacked.state_dict():
            parts = [state[key] for state in states]
            if key.endswith("num_batches_tracked"):
                # One BN holds one counter for all N students; it only matters when momentum=None.
                if any(not torch.equal(part, parts[0]) for part in parts):
                    raise ValueError(f"{key} differs between the models; stacked BN has one counter")
                merged[key] = parts[0]
            elif stacked._is_batched(key):
                merged[key] = torch.stack(parts)
            else:
                merged[key] = torch.cat(parts)  # student k's channels are block k
        stacked.load_state_dict(merged)
        return stacked.to(first.fc.weight.device)

    def _is_batched(self, key: str) -> bool:
        # StackedLinear keeps a leading N axis; convs and BNs concatenate along their channel axis.
        return isinstance(self.get_submodule(key.rpartition(".")[0]), StackedLinear)

    def unstack(self) -> list[dict[str, torch.Tensor]]:
        """N state dicts, each loadable (strict) into a fresh CifarResNet of the stacked architecture."""
        n = self.n_models
        states: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
        for key, value in self.state_dict().items():
            if key.endswith("num_batches_tracked"):
                parts = [value] * n
            elif self._is_batched(key):
                parts = value.unbind(0)
            else:
                parts = value.chunk(n, dim=0)
            for state, part in zip(states, parts):
                # A copy, so the students do not alias (or pin) the stacked network's storage.
                state[key] = part.clone(memory_format=torch.contiguous_format)
        return states

    def _merge_students(self, x: torch.Tensor) -> torch.Tensor:
        """[N, B, C, H, W] -> [B, N*C, H, W] with student k in channel block k, in one copy."""
        n, b, c, h, w = x.shape
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            # Build NHWC directly so the convs do not convert the layout a second time.
            return x.permute(1, 3, 4, 0, 2).reshape(b, h, w, n * c).permute(0, 3, 1, 2)
        return x.permute(1, 0, 2, 3, 4).reshape(b, n * c, h, w)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, B, C, H, W] -> pooled features [N, B, F]."""
        if x.dim() != 5 or x.shape[0] != self.n_models:
            raise ValueError(f"expected input [{self.n_models}, B, C, H, W], got {list(x.shape)}")
        n, b = x.shape[:2]
        x = F.relu(self.bn1(self.conv1(self._merge_students(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.pool(x), 1).reshape(b, n, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class FlatStack(nn.Module):
    """A stack behind the one-model interface of the training loop: N*B images in (student k's batch
    is rows k*B..(k+1)*B), N*B logits out."""

    def __init__(self, stacked: StackedCifarResNet):
        super().__init__()
        self.stacked = stacked

    @property
    def n_models(self) -> int:
        return self.stacked.n_models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stacked(x.unflatten(0, (self.stacked.n_models, -1))).flatten(0, 1)


def per_student_terms(
    objective: Objective, logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """A kdprune.losses.kd objective applied to each student of a stack: logits [N, B, K], targets
    [N, B], teacher_logits [N, B, K] or None -> every term as an [N] vector of the students' own
    batch means. Student k's logits only enter entry k, so the gradient of the sum of all entries
    is, for every student, its gradient when trained alone."""
    n, b = logits.shape[:2]
    if targets.shape != (n, b):
        raise ValueError(f"targets must be [N, B] = [{n}, {b}], got {list(targets.shape)}")
    per = [objective(logits[k], targets[k], None if teacher_logits is None else teacher_logits[k]) for k in range(n)]
    return {name: torch.stack([terms[name] for terms in per]) for name in per[0]}


class PerStudentObjective:
    """`per_student_terms` on the flat outputs of a FlatStack: what the training loop calls."""

    def __init__(self, objective: Objective, n: int):
        self.objective, self.n = objective, n
        self.needs_teacher = getattr(objective, "needs_teacher", False)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        split = (0, (self.n, -1))
        teacher = None if teacher_logits is None else teacher_logits.unflatten(*split)
        return per_student_terms(self.objective, logits.unflatten(*split), targets.unflatten(*split), teacher)


def one_network(models: Sequence[nn.Module], objective: Objective) -> tuple[nn.Module, Objective]:
    """What the training step runs for `models`: the model and objective themselves for one, a
    FlatStack and its PerStudentObjective for several."""
    if len(models) == 1:
        return models[0], objective
    return FlatStack(StackedCifarResNet.from_models(models)), PerStudentObjective(objective, len(models))
