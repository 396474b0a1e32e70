"""The one training loop: CE or any registered loss (KD from a frozen teacher), on a subset given as
indices, SGD + momentum + weight decay with a step or cosine schedule, crop + flip augmentation.
Checkpoints every epoch (atomically, with a SHA-256 sidecar) and resumes from the checkpoint when
re-run with the same settings, so a killed or requeued job continues instead of starting over; a
stop signal (kdprune.stopping) checkpoints at once, mid-epoch, and the rerun ends bit-exactly where
an uninterrupted run ends. Optionally prunes each epoch dynamically (recipe field `infobatch`,
kdprune.train.infobatch); every run records the sample-steps it trained (`sample_steps`: images
summed over epochs)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from kdprune.files import load_torch, save_torch
from kdprune.stopping import NonFiniteLoss, Preempted, requested
from kdprune.train import SCHEDULES
from kdprune.train.accel import Accel
from kdprune.train.infobatch import InfoBatch, InfoBatchState
from kdprune.train.optim import SGD
from kdprune.train.stacking import one_network
from kdprune.train.step import StepRunner, batch_source


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "step"
    milestones: tuple[int, ...] = field(default=())  # step schedule: epochs where lr *= gamma
    gamma: float = 0.1
    eval_batch_size: int = 1024
    # "epochs": every keep fraction trains `epochs` passes over its subset (fewer steps when
    # pruned); "steps": as many steps as `epochs` passes over the full training set.
    budget: str = "epochs"
    # InfoBatch dynamic pruning ({ratio, delta, cost_share}, kdprune.train.infobatch); None: every epoch trains on the whole subset.
    infobatch: InfoBatch | None = None

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        d = dict(d)
        d["milestones"] = tuple(d.get("milestones", ()))
        if isinstance(d.get("infobatch"), dict):
            d["infobatch"] = InfoBatch(**d["infobatch"])
        return cls(**d)

    def lr_at(self, epoch_progress: float) -> float:
        """Learning rate after `epoch_progress` epochs (fractional: schedules move per step)."""
        return self.lr * SCHEDULES.get(self.schedule)(self, epoch_progress)


def step_schedule(recipe: Recipe, progress: float) -> float:
    return recipe.gamma ** sum(progress >= m for m in recipe.milestones)


def cosine_schedule(recipe: Recipe, progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(progress / recipe.epochs, 1.0)))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True


@torch.no_grad()
def split_logits(
    model: nn.Module, data, split: str, device: torch.device, batch_size: int = 1024, accel: Accel = Accel(), copies: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a whole split of `data`, in order (eval mode, no augmentation), on the CPU.
    `copies`: each batch goes in that many times (a stack of students); logits are [copies, n, K]."""
    model.eval()
    outs, ys = [], []
    for x, y in data.eval_batches(split, batch_size, device):
        if copies > 1:  # student k of a stack reads block k of the batch
            x = x.repeat(copies, *([1] * (x.dim() - 1)))
        with accel.autocast(device):
            outs.append(model(accel.images(x)).float().unflatten(0, (copies, -1)).cpu())
        ys.append(y.cpu())
    logits = torch.cat(outs, dim=1)
    return logits[0] if copies == 1 else logits, torch.cat(ys)


def accuracies(model: nn.Module, data, device: torch.device, copies: int = 1, batch_size: int = 1024, accel: Accel = Accel()) -> list[float]:
    """Test accuracy of a model, or of each student of a stack of `copies`."""
    logits, y = split_logits(model, data, "test", device, batch_size, accel, copies)
    return (logits.argmax(-1) == y).float().mean(-1).reshape(-1).tolist()


def accuracy(model: nn.Module, data, device: torch.device, batch_size: int = 1024, accel: Accel = Accel()) -> float:
    return accuracies(model, data, device, 1, batch_size, accel)[0]


def _batches(n: int, batch_size: int) -> list[slice]:
    # A trailing batch of one sample would break BatchNorm in training mode: fold it away.
    edges = list(range(0, n, batch_size)) + [n]
    if len(edges) > 2 and edges[-1] - edges[-2] == 1:
        edges.pop(-2)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def planned_passes(recipe: Recipe, n_subset: int, n_full: int) -> int:
    """Passes over the subset that the budget allows (see Recipe.budget)."""
    if recipe.budget == "epochs":
        return recipe.epochs
    return max(recipe.epochs, round(recipe.epochs * n_full / n_subset))


def fit(
    model: nn.Module,
    data,
    indices: np.ndarray,
    recipe: Recipe,
    objective: Callable,
    *,
    seed: int,
    label: str = "train",
    **options,
) -> dict:
    """Train `model` in place on the training samples `indices` of `data`; returns the history and
    summary metrics. One "epoch" below is one pass over the subset; the schedule runs on the
    recipe's epochs, so a "steps" budget stretches it over more passes. Options (see fit_stack):
    `stop_epoch` ends training early (early-epoch scores); `on_batch(epoch, sample_indices, logits,
    targets)` sees every training step (training-dynamics scores such as forgetting events); `accel`
    says how steps run (kdprune.train.accel); `teacher_views` (kdprune.train.views) replaces the
    teacher's forward passes by exact lookups. With `recipe.infobatch` each epoch trains on the
    samples InfoBatch keeps (kdprune.train.infobatch; `on_batch` sees those)."""
    return fit_stack([model], data, [indices], recipe, objective, seeds=[seed], labels=[label], **options)[0]


def fit_stack(
    models: list[nn.Module],
    data,
    subsets: list[np.ndarray],
    recipe: Recipe,
    objective: Callable,
    *,
    seeds: list[int],
    device: torch.device,
    teacher: nn.Module | None = None,
    teacher_views: torch.Tensor | None = None,
    accel: Accel = Accel(),
    checkpoint: Path | None = None,
    run_hash: str = "",
    stop_epoch: int | None = None,
    labels: list[str] | None = None,
    log: Callable[[str], None] = print,
    on_batch: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
    supervised: np.ndarray | None = None,
) -> list[dict]:
    """Train N models of one CIFAR ResNet architecture at once, as one stacked network
    (kdprune.train.stacking): model k on `subsets[k]` with `seeds[k]`, drawing exactly the batches and views
    it would draw alone, with its own BN statistics, loss and optimizer state. The subsets must have
    one size (one number of steps). N = 1 is plain training of any model. The models are updated in
    place; returns one result per model. A stack's time is split evenly among its students.
    InfoBatch (`recipe.infobatch`) trains one model only: its students' epochs would differ in length.
    `supervised` (P3's data selection, one model only): the training-sample indices whose loss
    keeps the teacher's terms; every other sample trains on the loss's `ce` term alone.
    `checkpoint`: written after every epoch (checksummed) and read back by a rerun with the same
    `run_hash`. A stop signal (kdprune.stopping) is seen between steps: the checkpoint is written at
    once, mid-epoch, and `Preempted` raised; the rerun draws that epoch's plan again, skips the steps
    done and ends as an uninterrupted run would, to the bit on a CPU. An `on_batch` hook with
    `state_dict()` / `load_state_dict()` is checkpointed with the run (see `_stateful`)."""
    n = len(models)
    sizes = {len(s) for s in subsets}
    if len(sizes) != 1 or len(seeds) != n:
        raise ValueError(f"a stack needs one subset size and one seed per model, got sizes {sorted(sizes)}, {len(seeds)} seeds for {n} models")
    if on_batch is not None and n > 1:
        raise ValueError("on_batch hooks see a single run; train stacks without them")
    if recipe.infobatch is not None and n > 1:
        raise ValueError("InfoBatch prunes each run's epochs by its own losses: train its seeds one at a time, not stacked")
    if recipe.infobatch is not None and not callable(getattr(objective, "per_sample", None)):
        raise ValueError(f"InfoBatch needs the loss per sample, and {type(objective).__name__} has no per_sample()")
    if supervised is not None and (n > 1 or not callable(getattr(objective, "per_sample", None))):
        raise ValueError(
            f"data selection masks one run's loss per sample: one model with a per_sample() loss, got {n} and {type(objective).__name__}"
        )
    labels = labels or [f"train s{s}" for s in seeds]
    net, step_objective = one_network(models, objective)
    accel.prepare(net, device)
    if teacher is not None:
        accel.prepare(teacher, device).eval()
    optimizer = SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    subsets = [torch.as_tensor(np.asarray(s), dtype=torch.int64) for s in subsets]
    size = sizes.pop()
    passes = planned_passes(recipe, size, len(data.y_train))
    per_pass = recipe.epochs / passes  # schedule epochs per pass
    eval_every = max(1, passes // recipe.epochs)  # about `epochs` evaluations whatever the budget
    last_epoch = min(stop_epoch or passes, passes)
    infobatch = None if recipe.infobatch is None else InfoBatchState(recipe.infobatch, subsets[0], len(data.y_train), passes, device)
    histories: list[list[dict]] = [[] for _ in range(n)]
    start_epoch, partial = 0, None  # partial: the state of an epoch stopped mid-way (see _stopped)
    if checkpoint is not None and checkpoint.exists():
        try:
            # truncated, corrupt, without its checksum or foreign: ignored, never unpickled or run
            state = load_torch(checkpoint, map_location=device, checksum=True)
            if state.get("run_hash") != run_hash or len(state.get("histories", ())) != n:
                raise ValueError("written for other settings")
            if infobatch is not None and "infobatch" not in state:
                raise ValueError("it has no InfoBatch scores")
            if _stateful(on_batch) and "on_batch" not in state:
                raise ValueError("it has no state of the on_batch hook")
            if _stateful(on_batch):  # first: it checks its shapes before anything is loaded
                on_batch.load_state_dict(state["on_batch"])
            optimizer.load_state_dict(state["optimizer"])
            net.load_state_dict(state["model"])
            if infobatch is not None:
                infobatch.load_state_dict(state["infobatch"])
            histories, start_epoch, partial = state["histories"], state["epoch"], state.get("partial")
            where = f"at epoch {start_epoch}" if partial is None else f"in epoch {start_epoch + 1} after step {partial['step']}"
            log(f"[{labels[0]}] resuming from {checkpoint} {where}")
        except ValueError as why:
            log(f"[{labels[0]}] ignoring {checkpoint}: {str(why).removeprefix(f'{checkpoint}: ')}; training from the start")

    source = batch_source(data, device, accel)
    supervision = None
    if supervised is not None:
        supervision = torch.zeros(len(data.y_train), device=device)
        supervision[torch.as_tensor(np.asarray(supervised), dtype=torch.int64).to(device)] = 1.0
    runner = StepRunner(net, step_objective, optimizer, accel, device, teacher, teacher_views, infobatch, supervision, ", ".join(labels), log)
    if infobatch is not None:
        ib = recipe.infobatch
        ratio = f"ratio {ib.ratio:g}" if ib.cost_share is None else f"ratio per epoch to spend {ib.cost_share:g} of full-data sample-steps"
        log(f"[{labels[0]}] InfoBatch {ratio}, delta {ib.delta:g}: {ib.pruned_epochs(passes)} of {passes} epochs prune, the rest train on all {size}")
    epoch_seconds = sum(h["epoch_seconds"] for h in histories[0])
    for epoch in range(start_epoch, last_epoch):
        t0 = time.perf_counter()
        net.train()
        runner.reset_sums()
        if hasattr(objective, "start_epoch"):  # per-epoch state of a loss (DKD's warm-up), written in place
            objective.start_epoch(epoch, device)
        # One generator per student and epoch, derived from (seed, epoch): a resumed run draws the same batches.
        gens = [torch.Generator().manual_seed(seed * 1_000_003 + epoch) for seed in seeds]
        # InfoBatch before the epoch's draw: a stop mid-epoch saves it, so the resumed run draws the same epoch.
        ib_before = _copied(infobatch.state_dict()) if infobatch is not None and checkpoint is not None else None
        # InfoBatch (one student): the epoch's kept samples, drawn first from the epoch's generator.
        epoch_sets = [infobatch.epoch_samples(epoch, gens[0])] if infobatch is not None else subsets
        samples = len(epoch_sets[0])  # per student, this epoch
        orders = [kept[torch.randperm(samples, generator=gen)] for kept, gen in zip(epoch_sets, gens)]
        batches = _batches(samples, recipe.batch_size)
        done = 0  # steps of this epoch already trained: the plan above is drawn whole, they are skipped
        if partial is not None:
            done, t0 = partial["step"], t0 - partial["seconds"]
            _resume_epoch(runner, infobatch, partial)
            partial = None
        # The cumulative loss after each step, copied on the device (no host sync): at the epoch's end
        # it names the first non-finite step (a sum that turned NaN or infinite stays so).
        trace = torch.zeros((len(batches), n), device=device)
        for step, (idx, packed) in enumerate(islice(source.plan(orders, batches, gens), done, None), start=done):
            optimizer.set_lr(_step_lr(recipe, epoch, step, len(batches), per_pass))
            logits, y = runner.run(source, packed, n * recipe.batch_size)
            trace[step].copy_(runner.sums["loss"].reshape(-1))
            if on_batch is not None:
                on_batch(epoch, idx, logits, y)
            if requested() is not None:  # a host-side flag between steps: safe with a captured graph too
                _check_finite(trace, labels, epoch)
                where = f"epoch {epoch + 1} step {step + 1}"
                if checkpoint is None:
                    raise Preempted(f"[{labels[0]}] stopped by {requested()} at {where}: this run keeps no checkpoint; rerun to train it again")
                partial = _stopped(runner, infobatch, step + 1, time.perf_counter() - t0)
                save_torch(checkpoint, _checkpoint(net, optimizer, epoch, histories, run_hash, ib_before, on_batch, partial), checksum=True)
                raise Preempted(f"[{labels[0]}] stopped by {requested()} at {where}: checkpoint written to {checkpoint}; rerun to resume")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_train = time.perf_counter() - t0
        _check_finite(trace, labels, epoch)  # once per epoch: a per-step check would stall the device
        lr = _step_lr(recipe, epoch, len(batches) - 1, len(batches), per_pass)  # the epoch's last
        evaluate = (epoch + 1) % eval_every == 0 or epoch + 1 == last_epoch
        accs = accuracies(net, data, device, n, recipe.eval_batch_size, accel) if evaluate else [None] * n
        sums = {name: value.reshape(-1).tolist() for name, value in runner.sums.items()}
        wall = time.perf_counter() - t0
        epoch_seconds += wall / n
        for k, history in enumerate(histories):
            record = {name: value[k] / samples for name, value in sums.items()}
            record.update(epoch=epoch + 1, samples=samples, test_acc=accs[k], lr=lr, train_seconds=t_train / n, epoch_seconds=wall / n)
            history.append(record)
            if evaluate:
                best = max(h["test_acc"] for h in history if h["test_acc"] is not None)
                eta = epoch_seconds * n / (epoch + 1 - start_epoch) * (last_epoch - epoch - 1)
                terms_txt = ", ".join(f"{name} {record[name]:.4f}" for name in sums if name != "loss")
                kept_txt = f" | {samples}/{size} samples" if infobatch is not None else ""
                log(
                    f"[{labels[k]}] epoch {epoch + 1:>3}/{last_epoch} | loss {record['loss']:.4f} ({terms_txt}) | "
                    f"acc {100 * accs[k]:.2f}% (best {100 * best:.2f}%) | lr {lr:.4g}{kept_txt} | "
                    f"{n * samples / t_train:,.0f} img/s | ETA {clock(eta)}"
                )
        if checkpoint is not None:
            ib_state = None if infobatch is None else infobatch.state_dict()
            save_torch(checkpoint, _checkpoint(net, optimizer, epoch + 1, histories, run_hash, ib_state, on_batch), checksum=True)

    if n > 1:
        for model, state in zip(models, net.stacked.unstack()):
            model.load_state_dict(state)
    n_params = sum(p.numel() for p in models[0].parameters())
    # fast_path_fallback: why this process gave up the CUDA graph (kdprune.train.step), None if it did not
    return [{**_summary(history, last_epoch, size, n_params, recipe, accel), "fast_path_fallback": runner.fallback} for history in histories]


def _step_lr(recipe: Recipe, epoch: int, step: int, steps: int, per_pass: float) -> float:
    """The learning rate of step `step` of `steps` in pass `epoch` (the schedule moves per step)."""
    return recipe.lr_at((epoch + step / steps) * per_pass)


def _stateful(on_batch: Callable | None) -> bool:
    """Whether an on_batch hook keeps state the checkpoint must carry (training-dynamics recorders,
    kdprune.pruning.runs): `state_dict()` / `load_state_dict()`. A hook without them only watches,
    and after a resume sees the steps its own process trains."""
    return callable(getattr(on_batch, "state_dict", None)) and callable(getattr(on_batch, "load_state_dict", None))


def _copied(state: dict) -> dict:
    # state_dict() of a CPU tensor hands out the tensor itself, which the next steps write
    return {name: value.clone() if isinstance(value, torch.Tensor) else value for name, value in state.items()}


def _checkpoint(
    net: nn.Module,
    optimizer: SGD,
    epochs_done: int,
    histories: list[list[dict]],
    run_hash: str,
    infobatch_state: dict | None,
    on_batch: Callable | None,
    partial: dict | None = None,
) -> dict:
    """What a checkpoint holds: after `epochs_done` whole epochs, plus `partial` when stopped mid-epoch
    (then `infobatch_state` is InfoBatch's as the stopped epoch began)."""
    state = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epochs_done, "histories": histories, "run_hash": run_hash}
    if infobatch_state is not None:
        state["infobatch"] = infobatch_state
    if _stateful(on_batch):
        state["on_batch"] = on_batch.state_dict()
    if partial is not None:
        state["partial"] = partial
    return state


def _stopped(runner: StepRunner, infobatch: InfoBatchState | None, steps: int, seconds: float) -> dict:
    """The rest of an epoch stopped after `steps` steps needs: how far it got, its loss sums so far,
    its training time so far and InfoBatch's scores as the steps left them."""
    partial = {"step": steps, "seconds": seconds, "sums": {name: value.detach().cpu().clone() for name, value in runner.sums.items()}}
    if infobatch is not None:
        partial["infobatch_scores"] = infobatch.scores.cpu().clone()
    return partial


def _resume_epoch(runner: StepRunner, infobatch: InfoBatchState | None, partial: dict) -> None:
    """Puts back what `_stopped` saved, once the epoch's plan is drawn again (InfoBatch draws it from
    the scores the epoch began with, then takes the scores its first steps left)."""
    for name, value in partial["sums"].items():  # in place: the step (and a graph captured later) adds into these
        runner.sums.setdefault(name, torch.zeros_like(value, device=runner.device)).copy_(value)
    if infobatch is not None:
        infobatch.scores.copy_(partial["infobatch_scores"])


def _check_finite(trace: torch.Tensor, labels: list[str], epoch: int) -> None:
    """NonFiniteLoss naming the run, the epoch and its first step whose loss was NaN or infinite,
    from the cumulative losses after each step (`trace`: steps x students; rows not run yet are 0)."""
    bad = ~torch.isfinite(trace)
    if not bad.any():
        return
    step = int(bad.any(1).nonzero()[0])
    k = int(bad[step].nonzero()[0])
    value = (trace[step, k] - trace[step - 1, k]).item() if step else trace[step, k].item()  # that step's own loss
    raise NonFiniteLoss(
        f"[{labels[k]}] the training loss is {value} at step {step + 1} of {len(trace)} in epoch {epoch + 1}: "
        f"stopped before its checkpoint, no metrics written; lower the learning rate or check the data"
    )


def _summary(history: list[dict], epochs: int, size: int, n_params: int, recipe: Recipe, accel: Accel) -> dict:
    evaluated = [h for h in history if h["test_acc"] is not None]
    best = max(evaluated, key=lambda h: h["test_acc"]) if evaluated else None
    train_seconds = sum(h["train_seconds"] for h in history)
    # Images trained, summed over epochs (epochs x subset size without InfoBatch); a checkpoint of
    # older code has no per-epoch `samples`: its epochs trained the whole subset.
    sample_steps = sum(h.get("samples", size) for h in history)
    return {
        "history": history,
        "final_acc": evaluated[-1]["test_acc"] if evaluated else float("nan"),
        "best_acc": best["test_acc"] if best else float("nan"),
        "best_epoch": best["epoch"] if best else -1,
        "epochs": epochs,
        "n_train": size,
        "n_params": n_params,
        "train_seconds": train_seconds,
        "sample_steps": sample_steps,
        "train_images_per_s": sample_steps / train_seconds if train_seconds else float("nan"),
        "recipe": asdict(recipe),
        "accel": accel.as_dict(),
    }


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
