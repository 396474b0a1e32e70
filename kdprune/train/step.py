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

The graph is guarded. Its first replay is checked against an eager step from the same state (see
`StepRunner._first_capture` and REPLAY_RTOL); if capture or a replay raises, or the check
disagrees, the runner logs one line, records the reason (`fallback`, the run's
`fast_path_fallback`) and trains eagerly from there, exactly as a plain run would. Every CUDA call
of the graph path goes through one seam, `StepRunner.graphs` (`CudaGraphs`), so tests can stand
in for it on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain

import torch
import torch.nn as nn

from kdprune.data.augment import crop_flip, draw_views
from kdprune.losses.kd import weighted_terms
from kdprune.train.accel import Accel
from kdprune.train.infobatch import InfoBatchState
from kdprune.train.optim import SGD

WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN autotuning, lazy allocations)
# The first replay may differ from an eager step by float reassociation only (cuDNN or atomics may
# sum in another order): after one step that is ~1e-6 relative on fp32 state. A tensor agrees when
# |replay - eager| <= atol + rtol * |eager| elementwise, rtol the larger of REPLAY_RTOL and 2 ulps of
# its dtype (bf16 logits under autocast: 2^-6); integer tensors (labels, BN step counts) exactly.
REPLAY_RTOL, REPLAY_ATOL = 1e-3, 1e-4
FALLBACK_CHARS = 300  # a fallback's reason as logged and recorded: one line, at most this long


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


class CudaGraphs:
    """The seam between the step and CUDA graphs: the warm-up, the capture and the replay. Nothing
    else in StepRunner calls CUDA, so a test replaces `StepRunner.graphs` with a stand-in that runs
    on a CPU (tests/train/test_fast_path_guard.py)."""

    def warm_up(self, runner: StepRunner, source, packed: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """One eager step on a side stream (capture needs one: cuDNN autotuning, lazy allocations)."""
        side = torch.cuda.Stream(runner.device)
        side.wait_stream(torch.cuda.current_stream(runner.device))
        with torch.cuda.stream(side):
            out = runner.body(source, packed)
        torch.cuda.current_stream(runner.device).wait_stream(side)
        return out

    def capture(self, runner: StepRunner, source, static_in: tuple) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
        """Records the step on `static_in` (nothing runs); returns the replay, which runs it on
        whatever `static_in` holds and returns the graph's output tensors."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = runner.body(source, static_in)

        def replay() -> tuple[torch.Tensor, torch.Tensor]:
            graph.replay()
            return static_out

        return replay


def disagreement(eager: dict[str, torch.Tensor], replayed: dict[str, torch.Tensor]) -> str | None:
    """The first tensor where a replay and an eager step differ beyond the tolerance (REPLAY_RTOL), or None."""
    for name, a in eager.items():
        b = replayed[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{name} is {b.dtype} {list(b.shape)} in the replay, {a.dtype} {list(a.shape)} eagerly"
        if not a.is_floating_point():
            if not torch.equal(a, b):
                return f"{name} differs ({int((a != b).sum())} of {a.numel()} entries)"
            continue
        rtol = max(REPLAY_RTOL, 2 * torch.finfo(a.dtype).eps)
        if not torch.allclose(b, a, rtol=rtol, atol=REPLAY_ATOL, equal_nan=True):
            gap = (b.float() - a.float()).abs().nan_to_num(float("inf")).max().item()
            return f"{name} differs by up to {gap:.3g} (rtol {rtol:g}, atol {REPLAY_ATOL:g})"
    return None


class StepRunner:
    graphs = CudaGraphs()  # the capture seam (a class attribute: tests stand in for it on a CPU)

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
        label: str = "step",
        log: Callable[[str], None] = print,
    ):
        self.model, self.objective, self.optimizer = model, objective, optimizer
        self.accel, self.device = accel, torch.device(device)
        self.teacher, self.teacher_views = teacher, teacher_views
        self.infobatch = infobatch  # its weight and score tables, read and written by sample index
        # P3's data selection: by sample index, 1 where the teacher supervises, 0 where CE alone does
        self.supervision = supervision
        self.sums: dict[str, torch.Tensor] = {}  # loss terms x batch size (per student), summed on the device
        self.label, self.log = label, log
        self.replay: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None  # the checked graph, once captured
        self.static_in: tuple = ()  # the graph's input buffers, set at capture
        self.warmed = 0
        self.fallback: str | None = None  # why the graph path was given up (then every step runs eagerly)

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
        if self.fallback is not None or not self.accel.cuda_graphs or source.size(packed) != full_batch:
            return self.body(source, packed)
        if self.replay is None and self.warmed < WARMUP_STEPS:
            self.warmed += 1
            return self.graphs.warm_up(self, source, packed)
        if self.replay is None:
            return self._first_capture(source, packed)
        try:
            return self._replay(self.replay, packed)
        except Exception as why:  # a launch that fails runs nothing of the step: this one runs eagerly
            self._give_up(f"replay raised {type(why).__name__}: {why}")
            return self.body(source, packed)

    def _first_capture(self, source, packed: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Captures the step and checks its first replay against an eager step on the same batch
        from the same state. One of the two is kept, so the step is applied once: the replay when
        they agree, the eager step otherwise (the run then goes on eagerly)."""
        state = self._state()
        before = _copy(state)
        try:
            self.static_in = tuple(t.clone() for t in packed)
            replay = self.graphs.capture(self, source, self.static_in)
        except Exception as why:
            _put(state, before)  # capture only records; this undoes whatever a failed one left
            self._give_up(f"capture raised {type(why).__name__}: {why}")
            return self.body(source, packed)
        _put(state, before)
        eager_out = tuple(t.clone() for t in self.body(source, packed))
        eager = _copy(state)
        _put(state, before)
        try:
            out = self._replay(replay, packed)
        except Exception as error:
            why = f"replay raised {type(error).__name__}: {error}"
        else:
            differs = disagreement(_outputs(eager_out) | eager, _outputs(out) | state)
            why = differs and f"the first replay disagrees with an eager step: {differs}"
        if why is not None:
            _put(state, eager)  # the eager step is the one kept
            self._give_up(why)
            return eager_out
        self.replay = replay
        return out

    def _replay(self, replay: Callable[[], tuple[torch.Tensor, torch.Tensor]], packed: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        for static, value in zip(self.static_in, packed):
            static.copy_(value, non_blocking=True)
        return replay()

    def _give_up(self, why: str) -> None:
        self.fallback = " ".join(why.split())[:FALLBACK_CHARS]  # one line, whatever the exception's message held
        self.replay, self.static_in = None, ()
        self.log(f"[{self.label}] CUDA-graph fast path off: {self.fallback}; continuing eagerly")

    def _state(self) -> dict[str, torch.Tensor]:
        """Every tensor a step writes, by name: what the replay check compares and restores (in
        place, so a captured graph's addresses stay valid)."""
        state = {f"model {name}": t for name, t in chain(self.model.named_parameters(), self.model.named_buffers())}
        state.update({f"gradient {k}": p.grad for k, p in enumerate(self.optimizer.params)})
        state.update({f"momentum {k}": b for k, b in enumerate(self.optimizer.buffers)})
        state.update({f"loss sum {name}": value for name, value in self.sums.items()})
        if self.infobatch is not None:
            state["InfoBatch scores"] = self.infobatch.scores
        return state


def _outputs(out: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"logits": out[0], "labels": out[1]}


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in state.items()}


@torch.no_grad()
def _put(state: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> None:
    for name, t in state.items():
        t.copy_(saved[name])
