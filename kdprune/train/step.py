"""One training step (augment, teacher, student, loss, backward, update), run eagerly or replayed
from a captured CUDA graph, and the two places its batches come from.

A batch is a tuple of device tensors (`packed`) that `source.inputs` turns into images and labels.
Everything after the host has drawn the batch happens inside `StepRunner.body`, so when the step is
captured the whole of it is one graph launch; per step the host only writes the learning rate and
copies the batch's packed tensors into the graph's static inputs.

InfoBatch (kdprune.train.infobatch) adds two device tables to the step: it reads the batch's loss
weights from one and writes the batch's per-sample losses into the other, both by sample index and
in place, so a captured graph replays them as well; only the host's choice of the epoch's samples
changes (fewer steps per epoch, still full-size batches but the last). P3's data selection
reads a third table the same way: which samples the teacher supervises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn as nn

from kdprune.data.augment import crop_flip, draw_views
from kdprune.losses.kd import weighted_terms
from kdprune.train.accel import Accel
from kdprune.train.infobatch import InfoBatchState
from kdprune.train.optim import SGD

WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN autotuning, lazy allocations)


class ResidentBatches:
    """In-memory datasets: the uint8 training set is copied to the device once. A batch is packed as
    one int64 tensor of rows (sample index, crop top, crop left, flip); gather, crop + flip (the
    dataset's `augmentation`) and standardisation run on the device. Views are drawn on the host from the epoch's generator, batch
    by batch in a fixed order, so CPU and GPU runs of a seed see identical batches."""

    def __init__(self, data, device: torch.device, accel: Accel):
        if data.augmentation is None:
            raise ValueError(f"dataset {data.name} has no training augmentation: load it with load_dataset or set its augmentation")
        self.x = data.x_train.to(device)
        self.y = data.y_train.to(device)
        self.normalize = data.normalizer(device)
        self.augmentation, self.accel, self.device = data.augmentation, accel, device

    def plan(self, orders: list[torch.Tensor], batches: list[slice], gens: list[torch.Generator]) -> Iterator[tuple[torch.Tensor, tuple]]:
        """The epoch's batches. One order and generator per student of a stack (one for a single
        run); student k draws exactly the views it would draw alone, and its rows are block k of
        every batch."""
        rows = [torch.cat([self._rows(order[part], gen) for order, gen in zip(orders, gens)], 1) for part in batches]
        packed = torch.cat(rows, 1).to(self.device, non_blocking=True).split([r.shape[1] for r in rows], 1)  # one copy per epoch
        for row, on_device in zip(rows, packed):
            yield row[0], (on_device,)

    def _rows(self, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        top, left, flip = draw_views(len(idx), self.augmentation, gen)
        return torch.stack([idx, top, left, flip.long()])

    @staticmethod
    def size(packed: tuple) -> int:
        return packed[0].shape[1]

    def inputs(self, packed: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        idx, top, left, flip = packed[0]
        x = crop_flip(self.x[idx], top, left, flip.bool(), self.augmentation)
        return self.accel.images(self.normalize(x)), self.y[idx]

    def view_logits(self, views: torch.Tensor, packed: tuple) -> torch.Tensor:
        idx, top, left, flip = packed[0]
        return views[idx, top, left, flip]

    @staticmethod
    def indices(packed: tuple) -> torch.Tensor:
        return packed[0][0]


class StreamedBatches:
    """Datasets read from disk by DataLoader workers (ImageFolder): the data object's own batches,
    packed as (images, labels, sample indices) on the device."""

    def __init__(self, data, device: torch.device, accel: Accel):
        self.data, self.device, self.accel = data, device, accel

    def plan(self, orders: list[torch.Tensor], batches: list[slice], gens: list[torch.Generator]) -> Iterator[tuple[torch.Tensor, tuple]]:
        if len(orders) != 1:
            raise ValueError("streamed datasets train one student at a time (no stacks)")
        for idx, x, y in self.data.train_batches(orders[0], batches, gens[0], self.device):
            yield idx, (x, y, torch.as_tensor(idx, dtype=torch.int64).to(self.device, non_blocking=True))

    @staticmethod
    def size(packed: tuple) -> int:
        return packed[1].shape[0]

    def inputs(self, packed: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        return self.accel.images(packed[0]), packed[1]

    def view_logits(self, views, packed):
        raise ValueError("teacher views need an in-memory dataset (crop offsets drawn by kdprune)")

    @staticmethod
    def indices(packed: tuple) -> torch.Tensor:
        return packed[2]


def batch_source(data, device: torch.device, accel: Accel):
    return ResidentBatches(data, device, accel) if hasattr(data, "x_train") else StreamedBatches(data, device, accel)


class StepRunner:
    def __init__(
        self,
        model: nn.Module,
        objective: Callable,
        optimizer: SGD,
        accel: Accel,
        device: torch.device,
        teacher: nn.Module | None = None,
        teacher_views: torch.Tensor | None = None,
        infobatch: InfoBatchState | None = None,
        supervision: torch.Tensor | None = None,
    ):
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.accel, self.device = accel, torch.device(device)
        self.teacher, self.teacher_views = teacher, teacher_views
        self.infobatch = infobatch  # its weight and score tables, read and written by sample index
        # P3's data selection: by sample index, 1 where the teacher supervises, 0 where CE alone does
        self.supervision = supervision
        self.sums: dict[str, torch.Tensor] = {}  # loss terms x batch size (per student), summed on the device
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_in: tuple = ()  # the graph's input buffers and outputs, set at capture
        self.static_out: tuple = ()
        self.warmed = 0

    def _teacher_logits(self, source, packed: tuple, x: torch.Tensor) -> torch.Tensor | None:
        if self.teacher_views is not None:
            return source.view_logits(self.teacher_views, packed).float()
        if self.teacher is None:
            return None
        with torch.no_grad():
            return self.teacher(x).float()

    def body(self, source, packed: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = source.inputs(packed)
        with self.accel.autocast(self.device):
            teacher_logits = self._teacher_logits(source, packed, x)
            logits = self.model(x)
        # Terms are scalars, or [N] vectors for a stack of N students (kdprune.train.stacking).
        if self.infobatch is None and self.supervision is None:
            terms = self.objective(logits.float(), y, teacher_logits)
        else:  # per-sample terms, looked up by sample index
            idx = source.indices(packed)
            per_sample = self.objective.per_sample(logits.float(), y, teacher_logits)
            if self.supervision is not None:  # the teacher's terms only where it supervises; `ce` everywhere
                mask = self.supervision[idx]
                per_sample = {name: value if name == "ce" else value * mask for name, value in per_sample.items()}
            if self.infobatch is None:
                terms = {name: value.mean() for name, value in per_sample.items()}
            else:  # InfoBatch: weighted batch means; each sample's unweighted loss becomes its score
                terms = weighted_terms(per_sample, self.infobatch.weights[idx])
                self.infobatch.scores[idx] = sum(per_sample.values()).detach()
        loss = sum(terms.values())
        loss.sum().backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        per_student = y.shape[0] // loss.numel()
        for name, value in {"loss": loss, **terms}.items():
            if name not in self.sums:
                self.sums[name] = torch.zeros(value.shape, device=self.device)
            self.sums[name].add_(value.detach() * per_student)
        return logits.detach(), y

    def reset_sums(self) -> None:
        for value in self.sums.values():
            value.zero_()  # in place: a captured graph adds into these very tensors

    def run(self, source, packed: tuple, full_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; full-size batches go through the CUDA graph when the mode has one (a trailing
        smaller batch runs eagerly on the same parameters, gradients and optimizer state)."""
        if not self.accel.cuda_graphs or source.size(packed) != full_batch:
            return self.body(source, packed)
        if self.graph is None and self.warmed < WARMUP_STEPS:
            self.warmed += 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = self.body(source, packed)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        if self.graph is None:
            self.static_in = tuple(t.clone() for t in packed)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):  # recorded, not run: the replay below runs it
                self.static_out = self.body(source, self.static_in)
        for static, value in zip(self.static_in, packed):
            static.copy_(value, non_blocking=True)
        self.graph.replay()
        return self.static_out
