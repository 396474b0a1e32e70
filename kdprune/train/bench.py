"""`python -m kdprune bench`: KD training throughput of the reference pipeline and of kdprune's, in
one process, on the same device, models, batch size and data.

Reference (what RepDistiller, mdistiller and the MDSLR code do on CIFAR): a torch DataLoader over PIL
images with torchvision RandomCrop(32, 4) + RandomHorizontalFlip + ToTensor + Normalize on worker
processes, fp32, torch.optim.SGD, the teacher run in every step.
kdprune: the training loop's own step (kdprune.train.step) under the `fast` accel mode resolved for the
device (bf16 + channels_last + CUDA graphs on a GPU; on a CPU the same maths without graphs), then
the same with teacher views (lookup instead of the teacher's forward) and with N students stacked
into one network (kdprune.train.stacking), counting every student's images.

Timings exclude start-up (worker spawn, cuDNN autotuning, graph capture): `warmup` steps run first.
Images are random uint8 32x32 (throughput does not depend on content) unless --data names a dataset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from kdprune.data import augmentation_of
from kdprune.data.images import ImageData, load_dataset
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.accel import Accel, resolve_accel
from kdprune.train.optim import SGD
from kdprune.train.stacking import one_network
from kdprune.train.step import WARMUP_STEPS, ResidentBatches, StepRunner


@dataclass
class Result:
    pair: str
    path: str
    images_per_s: float  # student images per second (all students of a stack)
    note: str = ""


def synthetic_cifar(n: int = 50_000, classes: int = 10, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return ImageData("synthetic", x, y, x[:1000], y[:1000], [str(i) for i in range(classes)], augmentation_of("cifar10"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, warmup: int, steps: int, device: torch.device) -> float:
    """Seconds per step over `steps` steps after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


# -- reference: DataLoader + PIL + torchvision transforms, fp32 ---------------------------------


class PILImages(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: a PIL image from the uint8 array, then the
    transform (module level so that DataLoader workers can unpickle it)."""

    def __init__(self, x_nhwc: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x_nhwc, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def reference_kd(
    student_arch: str, teacher_arch: str, data: ImageData, batch: int, workers: int, device: torch.device, warmup: int, steps: int
) -> float:
    import torchvision.transforms as T

    mean, std = data.channel_stats()
    aug = data.augmentation  # the views kdprune's step draws, the torchvision way
    crop = [T.RandomCrop(data.image_size, padding=aug.padding, padding_mode=aug.padding_mode)] if aug.padding else []
    transform = T.Compose([*crop, *([T.RandomHorizontalFlip()] if aug.flip else []), T.ToTensor(), T.Normalize(mean.tolist(), std.tolist())])
    dataset = PILImages(data.x_train.permute(0, 2, 3, 1).numpy(), data.y_train.numpy(), transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, pin_memory=device.type == "cuda", persistent_workers=workers > 0
    )
    student = create_model(student_arch, data.num_classes).to(device).train()
    teacher = create_model(teacher_arch, data.num_classes).to(device).eval()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = make_loss("kd", alpha=0.9, temperature=4.0)
    batches = iter(loader)

    def step():
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.no_grad():
            t = teacher(x)
        loss = sum(loss_fn(student(x), y, t).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return batch / _timed(step, warmup, steps, device)


# -- kdprune's step ------------------------------------------------------------------------------


def kdprune_kd(
    student_arch: str,
    teacher_arch: str,
    data: ImageData,
    batch: int,
    device: torch.device,
    accel: Accel,
    warmup: int,
    steps: int,
    views: bool = False,
    stack: int = 1,
    loss: tuple[str, dict] = ("kd", {}),
) -> float:
    """Student images per second of kdprune's KD step (or another distiller's: `loss` = name and
    parameters beside KD's alpha 0.9, T 4); `stack` students share one wide step."""
    students = [create_model(student_arch, data.num_classes) for _ in range(stack)]
    name, params = loss
    model, objective = one_network(students, make_loss(name, **({"alpha": 0.9, "temperature": 4.0} if name == "kd" else {}), **params))
    teacher = create_model(teacher_arch, data.num_classes)
    accel.prepare(model, device).train()
    accel.prepare(teacher, device).eval()
    table = None
    if views:  # timing only: a table of the right shape and dtype (its values do not change the cost)
        offsets, flips = data.augmentation.view_grid
        dtype = torch.bfloat16 if accel.precision == "bf16" else torch.float32
        table = torch.randn(len(data.y_train), offsets, offsets, flips, data.num_classes, device=device).to(dtype)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    runner = StepRunner(model, objective, optimizer, accel, device, teacher=None if views else teacher, teacher_views=table)
    source = ResidentBatches(data, device, accel)
    n_batches = len(data.y_train) // batch
    gens = [torch.Generator().manual_seed(k) for k in range(stack)]  # each student its own order and views
    plan = iter(())

    def step():
        nonlocal plan
        packed = next(plan, None)
        if packed is None:  # a new epoch: fresh orders and views, drawn on the host, as in training
            orders = [torch.randperm(len(data.y_train), generator=gen) for gen in gens]
            plan = (p for _, p in source.plan(orders, [slice(i * batch, (i + 1) * batch) for i in range(n_batches)], gens))
            packed = next(plan)
        optimizer.set_lr(0.05)
        runner.run(source, packed, batch * stack)

    return batch * stack / _timed(step, max(warmup, WARMUP_STEPS + 2), steps, device)


def view_table_seconds_per_image(teacher_arch: str, data: ImageData, device: torch.device, accel: Accel, n: int = 1024) -> float:
    """Time to compute one image's views (all crops x flips) for the teacher-view table, measured
    on `n` images (the table of a dataset costs this x its size, once per teacher)."""
    from kdprune.train.views import compute_view_logits

    teacher = create_model(teacher_arch, data.num_classes)
    part = ImageData("part", data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, data.classes, data.augmentation)
    if device.type == "cuda":  # cuDNN autotuning and lazy initialisation, outside the timing
        warm = ImageData("w", part.x_train[:64], part.y_train[:64], data.x_test, data.y_test, data.classes, data.augmentation)
        compute_view_logits(teacher, warm, device, accel)
    _sync(device)
    t0 = time.perf_counter()
    compute_view_logits(teacher, part, device, accel)
    _sync(device)
    return (time.perf_counter() - t0) / n


# P3's distillers on the same path as plain KD: their overhead is the step's loss, nothing else
DISTILLERS = {"KD + label revision (eta 0.8)": ("kd", {"revise": 0.8}), "DKD": ("dkd", {}), "DKD + label revision": ("dkd", {"revise": 0.8})}


def run_bench(
    pairs: list[tuple[str, str]],
    device: torch.device,
    batch: int = 64,
    workers: int = 8,
    warmup: int = 20,
    steps: int = 200,
    stack: int = 8,
    data_spec: str | None = None,
    n_images: int = 50_000,
    log=print,
) -> list[Result]:
    data = load_dataset(data_spec) if data_spec else synthetic_cifar(n_images)
    accel = resolve_accel("fast", device)
    plain = resolve_accel("plain", device)
    results = []
    for student, teacher in pairs:
        pair = f"{teacher} -> {student}"
        ref = reference_kd(student, teacher, data, batch, workers, device, warmup, steps)
        results.append(Result(pair, f"reference (DataLoader {workers} workers, PIL, fp32)", ref))
        sample = 1024 if device.type == "cuda" else 16  # a CPU needs minutes for 1024 x 162 teacher passes
        per_image = view_table_seconds_per_image(teacher, data, device, accel, n=min(sample, len(data.y_train)))
        table_note = f"table: {per_image * 1e3:.3f} ms/image once per teacher ({per_image * 50_000:.0f} s for 50k images)"
        for path, kwargs, note in [
            ("kdprune plain (fp32, resident data)", dict(accel=plain), ""),
            (f"kdprune fast ({accel.precision}, channels_last, graphs={accel.cuda_graphs})", dict(accel=accel), ""),
            ("kdprune fast + teacher views", dict(accel=accel, views=True), table_note),
            (f"kdprune fast, {stack} students stacked", dict(accel=accel, stack=stack), ""),
            (f"kdprune fast + views, {stack} students stacked", dict(accel=accel, stack=stack, views=True), ""),
            *((f"kdprune fast + views, {name}", dict(accel=accel, views=True, loss=loss), "P3") for name, loss in DISTILLERS.items()),
        ]:
            results.append(Result(pair, path, kdprune_kd(student, teacher, data, batch, device, warmup=warmup, steps=steps, **kwargs), note))
            log(f"  {pair}: {path}: {results[-1].images_per_s:,.0f} img/s")
    return results


def format_results(results: list[Result], device: torch.device, batch: int) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    lines = [
        f"device: {name}; torch {torch.__version__}; batch {batch} per student; KD alpha 0.9, T 4",
        "",
        "| teacher -> student | path | student img/s | x reference | note |",
        "|---|---|---|---|---|",
    ]
    ref = {}
    for r in results:
        ref.setdefault(r.pair, r.images_per_s)
        lines.append(f"| {r.pair} | {r.path} | {r.images_per_s:,.0f} | {r.images_per_s / ref[r.pair]:.2f} | {r.note} |")
    return "\n".join(lines)
