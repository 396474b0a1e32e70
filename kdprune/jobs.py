"""What one workflow job does, given its spec (a JSON-able dict built here from the config and the
grid) and explicit paths. The package knows nothing of Snakemake: every job can be run by hand with
`python -m kdprune <verb> --spec '<json>' ...`."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kdprune.accel import resolve_accel
from kdprune.data import dataset_slug, load_dataset
from kdprune.grid import ScoreJob, StudentJob, TeacherJob
from kdprune.io import save_npz, save_torch, write_json
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.provenance import code_revision, platform_info, settings_hash
from kdprune.scores import SCORES
from kdprune.select import select_indices
from kdprune.teacher_views import compute_view_logits, load_view_logits, save_view_logits
from kdprune.train import Recipe, fit, pick_device, seed_everything


# -- specs: everything a job needs, nothing it does not (a changed spec reruns the job) ----------

def _common(cfg: dict, dataset: str) -> dict:
    return {"dataset": dataset, "data_root": cfg["data_root"], "download": cfg.get("download", True),
            "device": cfg.get("device", "auto"), "accel": cfg.get("accel", "auto")}


def teacher_spec(cfg: dict, job: TeacherJob) -> dict:
    subset = {"keep": 1.0, "method": "full"} if job.data_keep >= 1.0 else {
        "keep": job.data_keep, "method": "random", "rule": None, "selection": cfg["selection"]}
    return {**_common(cfg, job.dataset), "role": "teacher", "arch": job.arch, "recipe": cfg["recipes"][job.recipe],
            "loss": "ce", "seed": job.seed, **subset,
            "axes": {"role": "teacher", "dataset": dataset_slug(job.dataset), "arch": job.arch, "recipe": job.recipe,
                     "seed": job.seed, "keep": job.data_keep}}


def score_spec(cfg: dict, job: ScoreJob) -> dict:
    settings = dict(cfg["scores"].get(job.method, {}))
    if "recipe" in settings:
        settings["recipe"] = cfg["recipes"][settings["recipe"]]
    return {**_common(cfg, job.dataset), "role": "score", "method": job.method, "seed": job.seed, "settings": settings}


def student_spec(cfg: dict, job: StudentJob) -> dict:
    run = {k: getattr(job, k) for k in ("arch", "method", "rule", "keep", "loss", "alpha", "temperature", "seed")}
    # The specs of the teacher and the score it depends on make the run self-describing.
    upstream = {"teacher_spec": job.teacher and teacher_spec(cfg, job.teacher), "score_spec": job.score and score_spec(cfg, job.score)}
    return {**_common(cfg, job.dataset), "role": "student", **run, "recipe": cfg["recipes"][job.recipe],
            "selection": cfg["selection"] if job.score else None, **upstream,
            "axes": {"role": "student", **job.axes()}}


# -- runners ----------------------------------------------------------------------------------

def run_score(spec: dict, out: Path, log: Callable[[str], None] = print) -> None:
    t0 = time.perf_counter()
    device = pick_device(spec["device"])
    data = load_dataset(spec["dataset"], spec["data_root"], spec["download"])
    accel = resolve_accel(spec.get("accel"), device)
    scores = np.asarray(SCORES.get(spec["method"])(data, spec["settings"], spec["seed"], device, log, accel=accel), dtype=np.float64)
    if scores.shape != (len(data.y_train),) or not np.isfinite(scores).all():
        raise RuntimeError(f"score {spec['method']} returned {scores.shape} values (finite: {np.isfinite(scores).all()}), expected {len(data.y_train)} finite")
    save_npz(out, scores=scores, labels=data.y_train.numpy())
    write_json(out.with_suffix(".json"), {"spec": spec, "settings_hash": settings_hash(spec), "code_rev": code_revision(),
                                          "wall_seconds": time.perf_counter() - t0, **platform_info(device)})
    log(f"[score {spec['method']}] {len(scores)} scores in {time.perf_counter() - t0:.1f}s -> {out}")


def run_views(spec: dict, teacher_path: Path, out: Path, log: Callable[[str], None] = print) -> None:
    """The logits of every training view of a trained teacher (kdprune.teacher_views)."""
    t0 = time.perf_counter()
    device = pick_device(spec["device"])
    accel = resolve_accel(spec.get("accel"), device)
    data = load_dataset(spec["dataset"], spec["data_root"], spec["download"])
    teacher = load_teacher(teacher_path)
    table = compute_view_logits(teacher, data, device, accel)
    save_view_logits(out, table, teacher, accel, settings_hash(spec))
    write_json(out.with_suffix(".json"), {"spec": spec, "shape": list(table.shape), "dtype": str(table.dtype), "accel": accel.as_dict(),
                                          "code_rev": code_revision(), "wall_seconds": time.perf_counter() - t0, **platform_info(device)})
    log(f"[views {spec['arch']}] {tuple(table.shape)} {table.dtype} logits in {time.perf_counter() - t0:.1f}s -> {out}")


def load_teacher(path: Path) -> torch.nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = create_model(state["arch"], state["num_classes"], state["in_channels"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def run_training(spec: dict, out_dir: Path, teacher_path: Path | None = None, scores_path: Path | None = None,
                 log: Callable[[str], None] = print, views_path: Path | None = None) -> dict:
    """Train a teacher or a student into out_dir (metrics.json, model.pt); resumable. A KD student
    reads its teacher's view logits from `views_path` (run_views) instead of running the teacher."""
    t0 = time.perf_counter()
    device = pick_device(spec["device"])
    accel = resolve_accel(spec.get("accel"), device)
    data = load_dataset(spec["dataset"], spec["data_root"], spec["download"])
    if spec["method"] == "full":
        indices = np.arange(len(data.y_train))
    else:
        if scores_path is None:  # a teacher on a random fraction: the random score, computed here
            scores = SCORES.get("random")(data, {}, spec["seed"], device, log)
        else:
            with np.load(scores_path) as f:
                scores = f["scores"]
        indices = select_indices(scores, data.y_train.numpy(), spec["keep"], spec["rule"] or "hardest", seed=spec["seed"], **spec["selection"])
    loss = make_loss(spec["loss"], alpha=spec.get("alpha"), temperature=spec.get("temperature"))
    needs_teacher = getattr(loss, "needs_teacher", False)
    views, views_meta = load_view_logits(views_path, device) if needs_teacher and views_path else (None, {})
    teacher = load_teacher(teacher_path) if needs_teacher and views is None else None
    teacher_params = views_meta.get("teacher_params") or (sum(p.numel() for p in teacher.parameters()) if teacher else None)
    seed_everything(spec["seed"], device)
    model = create_model(spec["arch"], data.num_classes, data.channels)
    run_hash = settings_hash(spec)
    label = f"{spec['role']} {spec['arch']}"
    log(f"[{label}] {len(indices)}/{len(data.y_train)} training images, {spec['recipe']['epochs']} epochs on {device}")
    result = fit(model, data, indices, Recipe.from_dict(spec["recipe"]), loss, seed=spec["seed"], device=device,
                 teacher=teacher, teacher_views=views, accel=accel, checkpoint=out_dir / "checkpoint.pt", run_hash=run_hash,
                 label=label, log=log)
    save_torch(out_dir / "model.pt", {"arch": spec["arch"], "num_classes": data.num_classes, "in_channels": data.channels,
                                      "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}})
    metrics = {
        "spec": spec, "settings_hash": run_hash, "code_rev": code_revision(), **platform_info(device),
        "teacher_params": teacher_params, "teacher_views": views is not None,
        "subset_size": len(indices), "subset_sha": hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:12],
        "wall_seconds": time.perf_counter() - t0, **result,
    }
    write_json(out_dir / "metrics.json", metrics)  # last: its presence means the run is complete
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)
    log(f"[{label}] final acc {100 * result['final_acc']:.2f}%, best {100 * result['best_acc']:.2f}% "
        f"(epoch {result['best_epoch']}), {metrics['wall_seconds']:.1f}s")
    return metrics
