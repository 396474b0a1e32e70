"""Teacher cross-entropy (MDSLR: Chen et al., ICLR 2025, "Medium-Difficulty Samples Constitute
Smoothed Decision Boundary for Knowledge Distillation on Pruned Datasets"): the per-sample
cross-entropy of a frozen, trained teacher against the label. Higher = harder.

The released code (chenyd7/MDSLR, selected_samples/cifar100/medium/generate_index.py, lines
147-165) runs the teacher in eval mode over the training loader once, i.e. over ONE training view
of every image (RandomCrop(32, padding=4) + RandomHorizontalFlip), records
CrossEntropyLoss(reduction='none')(logits, target) per image, and in the same pass
torch.std(logits, dim=-1) (unbiased, over the classes); lines 171-184 and 212-214 average that std
over all training images of each class and save it as std.npy, the k_y of the logit reshaping
(kdprune.losses.kd.HintonKD.reshape). This score returns both: the cross-entropies, and the
per-class mean logit std as the extra array `class_logit_std` (runners.compute_score writes it into
the score file beside `scores`).

Settings (config `scores.teacher_ce`): `teacher` (the architecture; the score job hands the
trained teacher in as `settings["teacher_model"]`), `views`:

* `augmented` (default, the code's): one view per image, drawn with the suite's seeded
  draw_views / crop_flip (the dataset's `augmentation`, kdprune.data.Augmentation) from a
  generator seeded with the score's seed; a streamed dataset's own training views (its
  train_batches, seeded the same way).
* `clean`: the un-augmented images (the seed has no effect).
* `mean`: the mean cross-entropy over `n_views` (default 10) independently drawn views per image;
  k_y is then the mean std over all of those views.

Deviations from the released code: the views come from the suite's augmentation (CIFAR: the
config's `augmentation.padding_mode`, reflect by default, where the code pads with zeros) and its
seeded generator rather than torchvision's global RNG; cross-entropy and std are computed in
float64 from the teacher's fp32 logits (the code: fp32); a class without training images gets
k_y = NaN (the code would divide by zero too)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kdprune.data.augment import crop_flip, draw_views
from kdprune.pruning.runs import as_device
from kdprune.train.accel import Accel

VIEWS = ("augmented", "clean", "mean")
N_VIEWS = 10  # `views: mean` without `n_views`
BATCH_SIZE = 1024  # eval mode: the batch size changes nothing but speed and memory


def teacher_ce_scores(data, settings: dict, seed: int, device, log, accel: Accel = Accel()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(per-sample teacher cross-entropy [n_train], {"class_logit_std": k_y [num_classes]})."""
    teacher = settings.get("teacher_model")
    if teacher is None:
        raise ValueError("score teacher_ce needs a trained teacher: name its architecture as scores.teacher_ce.teacher")
    views = settings.get("views", "augmented")
    if views not in VIEWS:
        raise ValueError(f"scores.teacher_ce.views = {views!r} is not allowed; allowed: {', '.join(VIEWS)}")
    passes = int(settings.get("n_views", N_VIEWS)) if views == "mean" else 1
    if passes < 1:
        raise ValueError(f"scores.teacher_ce.n_views must be at least 1, got {passes}")
    device = as_device(device)
    teacher = teacher.to(device).eval()
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    ce = torch.zeros(n, dtype=torch.float64)
    spread = torch.zeros(n, dtype=torch.float64)
    for _ in range(passes):
        c, s = one_pass(teacher, data, device, None if views == "clean" else gen)
        ce += c
        spread += s
    labels = data.y_train.numpy()
    counts = np.bincount(labels, minlength=data.num_classes)
    sums = np.bincount(labels, weights=(spread / passes).numpy(), minlength=data.num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        class_std = sums / counts  # NaN for a class without training images
    log(f"[score teacher_ce] {n} images x {passes} view(s) ({views}); k_y in [{np.nanmin(class_std):.3f}, {np.nanmax(class_std):.3f}]")
    return (ce / passes).numpy(), {"class_logit_std": class_std}


def per_sample_ce_and_std(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each row of `logits` against its target, and the unbiased std of the row
    over the classes (no mean subtracted from the logits), in float64."""
    logits = logits.double()
    return F.cross_entropy(logits, targets, reduction="none"), logits.std(dim=1)


@torch.no_grad()
def one_pass(teacher: torch.nn.Module, data, device: torch.device, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and logit std of every training image (index order, on the CPU): of one
    training view per image drawn from `gen`, or of the clean image when `gen` is None."""
    n = len(data.y_train)
    ce = torch.empty(n, dtype=torch.float64)
    spread = torch.empty(n, dtype=torch.float64)
    for idx, x, y in _batches(data, device, gen):
        c, s = per_sample_ce_and_std(teacher(x).float(), y)
        ce[idx.cpu()], spread[idx.cpu()] = c.cpu(), s.cpu()
    return ce, spread


def _batches(data, device: torch.device, gen: torch.Generator | None):
    """(sample indices, standardised images, labels) covering the training set once."""
    n = len(data.y_train)
    slices = [slice(start, min(start + BATCH_SIZE, n)) for start in range(0, n, BATCH_SIZE)]
    if gen is None:
        for part, (x, y) in zip(slices, data.eval_batches("train", BATCH_SIZE, device)):
            yield torch.arange(part.start, part.stop), x, y
    elif not hasattr(data, "x_train"):  # streamed (ImageFolder): its own seeded training views
        yield from data.train_batches(torch.arange(n), slices, gen, device)
    else:
        if data.augmentation is None:
            raise ValueError(f"dataset {data.name} has no training augmentation: load it with load_dataset, or score with views: clean")
        top, left, flip = draw_views(n, data.augmentation, gen)
        normalize = data.normalizer(device)
        for part in slices:
            x = crop_flip(data.x_train[part].to(device), top[part].to(device), left[part].to(device), flip[part].to(device), data.augmentation)
            yield torch.arange(part.start, part.stop), normalize(x), data.y_train[part].to(device)
