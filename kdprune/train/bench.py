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

Dataset distillation (`run_dd_bench`, `bench --dd`; P4): DM's matching step (kdprune.distill.dm) in
synthetic-set updates per second (one update: every class matched once, one SGD step on the
synthetic images), with ConvNet-3 and DSA on, two ways. "original-style" handles the data as
VICO-UoE/DatasetCondensation `main_DM.py` does: the training set standardised once into a float
tensor on the device (`images_all`), per class a Python list of indices (`indices_class`), and
`get_images` = numpy's permutation of that list, cut to batch_real, indexing the device tensor.
kdprune's path is `distill_dm`'s loop: the `RealPool` resident on the device, batches drawn with a
seeded torch generator through `matched_batches` (with the filter hook). Both are eager fp32 and use
kdprune's ConvNet and DSA, so the two rows differ in data handling only. Then the evaluation
protocol's training (kdprune.distill.evaluate `train_models`, what `evaluate_synthetic` times) of
`num_eval` ConvNets on an IPC set with non-Siamese DSA, plain (one model after another) vs stacked
(one vmapped network), in models x passes per second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from kdprune.data import augmentation_of
from kdprune.data.images import ImageData, load_dataset
from kdprune.distill.dm import DEFAULTS as DM_DEFAULTS
from kdprune.distill.dm import dm_update
from kdprune.distill.dsa import DEFAULT_STRATEGY, DSAParams, diff_augment, draw, with_draw
from kdprune.distill.evaluate import train_models
from kdprune.distill.synthetic import RealPool, generators, initial_images
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
    images_per_s: float  # student images per second (all students of a stack); DD rows: the unit their pair names
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
P3_LOSSES = {"KD + label revision (eta 0.8)": ("kd", {"revise": 0.8}), "DKD": ("dkd", {}), "DKD + label revision": ("dkd", {"revise": 0.8})}


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
            *((f"kdprune fast + views, {name}", dict(accel=accel, views=True, loss=loss), "P3") for name, loss in P3_LOSSES.items()),
        ]:
            results.append(Result(pair, path, kdprune_kd(student, teacher, data, batch, device, warmup=warmup, steps=steps, **kwargs), note))
            log(f"  {pair}: {path}: {results[-1].images_per_s:,.0f} img/s")
    return results


def format_results(
    results: list[Result],
    device: torch.device,
    batch: int,
    about: str | None = None,
    columns: tuple[str, str, str] = ("teacher -> student", "student img/s", "x reference"),
) -> str:
    """A Markdown table; every row's ratio is to the first row of its pair. `about` and `columns`
    (first column, rate, ratio) describe other rows than KD's (the DD rows: `DD_ABOUT`, `DD_COLUMNS`)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    first, rate, ratio = columns
    lines = [
        f"device: {name}; torch {torch.__version__}; {about or f'batch {batch} per student; KD alpha 0.9, T 4'}",
        "",
        f"| {first} | path | {rate} | {ratio} | note |",
        "|---|---|---|---|---|",
    ]
    ref = {}
    for r in results:
        ref.setdefault(r.pair, r.images_per_s)
        rate = f"{r.images_per_s:,.0f}" if r.images_per_s >= 100 else f"{r.images_per_s:.3g}"  # DD rates can be below 1
        lines.append(f"| {r.pair} | {r.path} | {rate} | {r.images_per_s / ref[r.pair]:.2f} | {r.note} |")
    return "\n".join(lines)


# -- dataset distillation (P4): DM's matching step and the evaluation protocol --------------------

DD_ABOUT = "ConvNet-3 (width 128), DSA on, eager fp32"
DD_COLUMNS = ("DD step (rate unit)", "per second", "x original")
EVAL_SETTINGS = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "batch": 256}  # evaluate_synset's


def original_dm(data: ImageData, ipc: int, batch_real: int, device: torch.device, warmup: int, steps: int) -> float:
    """Synthetic-set updates per second of main_DM.py's loop (ConvNet branch), its data handling as
    written there; the network and DSA are kdprune's (one Siamese draw per class, as its seed does)."""
    norm = data.normalizer(device)
    chunk = 4096  # dst_train's ToTensor + Normalize once, then torch.cat(images_all).to(device)
    images_all = torch.cat([norm(data.x_train[i : i + chunk].to(device)) for i in range(0, len(data.y_train), chunk)])
    indices_class = [[] for _ in range(data.num_classes)]
    for i, lab in enumerate(data.y_train.tolist()):
        indices_class[lab].append(i)
    numpy_rng, dsa_gen, params = np.random.RandomState(0), torch.Generator().manual_seed(0), DSAParams()

    def get_images(c: int, n: int) -> torch.Tensor:
        idx_shuffle = numpy_rng.permutation(indices_class[c])[:n]
        return images_all[idx_shuffle]

    size = data.image_size
    image_syn = torch.cat([get_images(c, ipc) for c in range(data.num_classes)]).requires_grad_(True)
    optimizer_img = torch.optim.SGD([image_syn], lr=1.0, momentum=0.5)

    def update():
        net = create_model("ConvNet", data.num_classes, data.channels, image_size=size).to(device).train()  # get_network
        net.requires_grad_(False)
        loss = torch.tensor(0.0).to(device)
        for c in range(data.num_classes):
            img_real = get_images(c, batch_real)
            img_syn = image_syn[c * ipc : (c + 1) * ipc]
            augment = with_draw(draw(DEFAULT_STRATEGY, 1, size, size, dsa_gen, params), params)
            img_real, img_syn = augment(img_real), augment(img_syn)
            output_real = net.features(img_real).detach()
            output_syn = net.features(img_syn)
            loss = loss + torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0)) ** 2)
        optimizer_img.zero_grad()
        loss.backward()
        optimizer_img.step()
        loss.item()  # the original's loss_avg

    return 1.0 / _timed(update, warmup, steps, device)


def kdprune_dm(data: ImageData, ipc: int, batch_real: int, device: torch.device, warmup: int, steps: int) -> float:
    """Synthetic-set updates per second of kdprune.distill.dm.distill_dm's loop (the RealPool on the device)."""
    settings = {**DM_DEFAULTS, "batch_real": batch_real}
    gen = generators(0, "data", "net", "dsa")
    params = DSAParams()
    pool = RealPool(data, np.arange(len(data.y_train)), device)
    images, _ = initial_images(pool, ipc, "real", gen["data"])
    image_syn = images.detach().clone().requires_grad_(True)
    optimizer_img = torch.optim.SGD([image_syn], lr=settings["lr_img"], momentum=settings["momentum_img"])
    iteration = 0

    def update():
        nonlocal iteration
        dm_update(pool, image_syn, optimizer_img, ipc, iteration, settings, gen, params)
        iteration += 1

    return 1.0 / _timed(update, warmup, steps, device)


def evaluation_rate(data: ImageData, ipc: int, num_eval: int, epochs: int, path: str, device: torch.device) -> float:
    """Models x passes per second of the evaluation protocol's training (`train_models`, the part
    `evaluate_synthetic` reports as train_seconds) on a random IPC set, after an untimed one-pass run."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(data.num_classes * ipc, data.channels, data.image_size, data.image_size, generator=g)
    labels = torch.arange(data.num_classes).repeat_interleave(ipc)
    settings = {**EVAL_SETTINGS, "num_eval": num_eval, "path": path, "augment": lambda x, gen: diff_augment(x, DEFAULT_STRATEGY, gen)}
    train_models(images, labels, data, {**settings, "epochs": 0}, 0, device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    train_models(images, labels, data, {**settings, "epochs": epochs}, 0, device)
    _sync(device)
    return num_eval * (epochs + 1) / (time.perf_counter() - t0)


def run_dd_bench(
    device: torch.device,
    ipc: int = 10,
    batch_real: int = 256,
    num_eval: int = 4,
    eval_epochs: int = 20,
    warmup: int = 2,
    steps: int = 20,
    data_spec: str | None = None,
    n_images: int = 50_000,
    log=print,
) -> list[Result]:
    """DM's matching step, original-style vs kdprune's, and the evaluation's training, plain vs
    stacked; rows for format_results(..., about=DD_ABOUT, columns=DD_COLUMNS)."""
    data = load_dataset(data_spec) if data_spec else synthetic_cifar(n_images)
    match = f"DM matching, IPC {ipc}, batch_real {batch_real} (synthetic-set updates)"
    evaluation = f"evaluation, {num_eval} ConvNets, IPC {ipc}, {eval_epochs + 1} passes (models x passes)"
    rows = [
        (
            match,
            "original-style (main_DM.py: images_all on the device, numpy permutation per class)",
            lambda: original_dm(data, ipc, batch_real, device, warmup, steps),
        ),
        (match, "kdprune (distill_dm: RealPool on the device, seeded torch draws)", lambda: kdprune_dm(data, ipc, batch_real, device, warmup, steps)),
        (evaluation, "plain (one model after another)", lambda: evaluation_rate(data, ipc, num_eval, eval_epochs, "plain", device)),
        (evaluation, f"stacked ({num_eval} models, vmap)", lambda: evaluation_rate(data, ipc, num_eval, eval_epochs, "stacked", device)),
    ]
    results = []
    for pair, path, measure in rows:
        results.append(Result(pair, path, measure()))
        log(f"  {pair}: {path}: {results[-1].images_per_s:,.2f}/s")
    return results
