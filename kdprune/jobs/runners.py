"""What each kind of job does (kdprune.plan.kinds), given its spec and the paths of what it reads and
writes. `python -m kdprune run <kind> --plan results/<preset>/plan.json --key <key>` looks a job up in
the plan and calls its runner here; the package knows nothing of Snakemake, so any job can be run by
hand the same way."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from kdprune.data import Augmentation
from kdprune.data.images import load_dataset
from kdprune.files import load_torch, read_json, remove_checksummed, save_npz, save_torch, write_json
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.models.checkpoints import load_checkpoint
from kdprune.models.resnet_cifar import CifarResNet
from kdprune.plan.grid import FULL
from kdprune.plan.kinds import DONE, settings_hash
from kdprune.provenance import code_revision, platform_info
from kdprune.pruning import SCORES, score_and_extras
from kdprune.pruning.runs import RunCheckpoints
from kdprune.pruning.selection import select_indices
from kdprune.train.accel import resolve_accel
from kdprune.train.agreement import kept_subset_agreement
from kdprune.train.loop import Recipe, accuracy, fit, fit_stack, pick_device, seed_everything
from kdprune.train.views import compute_view_logits, load_view_logits, save_view_logits

# -- the runners of the job kinds: runner(spec, inputs, outputs, cfg, log), paths as strings -----------


def run_teacher(spec: dict, inputs: dict, outputs: dict, cfg: dict, log: Callable[[str], None] = print) -> None:
    if spec.get("checkpoint"):  # `teacher_checkpoints`: an existing teacher, imported instead of trained
        import_teacher(spec, Path(outputs["model"]).parent, log)
    else:
        run_training(spec, Path(outputs["model"]).parent, log=log)


def import_teacher(spec: dict, out_dir: Path, log: Callable[[str], None] = print) -> dict:
    """A teacher from a checkpoint (RepDistiller's layout or the suite's own model.pt,
    kdprune.models.checkpoints): loaded into the spec's architecture, its test accuracy measured
    here, written as the suite's model.pt with the file's sha256 in its metrics."""
    t0 = time.perf_counter()
    device = pick_device(spec["device"])
    data = load_data(spec)
    model, info = load_checkpoint(spec["checkpoint"], spec["arch"], data.num_classes, data.channels)
    acc = accuracy(model.to(device), data, device)
    log(f"[teacher {spec['arch']} s{spec['seed']}] imported from {spec['checkpoint']} ({info['layout']} layout): test acc {100 * acc:.2f}%")
    result = {"final_acc": acc, "best_acc": acc, "best_epoch": 0, "epochs": 0, "history": [], "n_params": sum(p.numel() for p in model.parameters())}
    extra = {"checkpoint_sha256": info["sha256"], "checkpoint_layout": info["layout"], "stack": {"mode": "single", "size": 1}}
    return _save_run(spec, out_dir, model, result, data, np.arange(len(data.y_train)), time.perf_counter() - t0, device, extra, "teacher", log)


def run_views(spec: dict, inputs: dict, outputs: dict, cfg: dict, log: Callable[[str], None] = print) -> None:
    """The logits of every training view of a trained teacher (kdprune.train.views)."""
    compute_views(spec, Path(inputs["model"]), Path(outputs["views"]), log)


def run_score(spec: dict, inputs: dict, outputs: dict, cfg: dict, log: Callable[[str], None] = print) -> None:
    compute_score(spec, Path(outputs["scores"]), log, teacher_path=inputs.get("teacher") and Path(inputs["teacher"]))


def run_distilled(specs: list[dict], inputs: dict, outputs: dict, cfg: dict, log: Callable[[str], None] = print) -> None:
    """The distilled sets of one grid point's seeds (P4): each seed's selection of the real images ->
    `ipc` synthetic images per class; the dataset is loaded once. Each set saves its state every
    `distill.checkpoint_every` iterations beside its files (kdprune.distill.resume). The checkpoints
    go only once every set is written: if the job stops during a later seed, the workflow deletes
    every output of the job, and the finished seeds' final states make their rerun instant."""
    from kdprune.distill.resume import CHECKPOINT_FILE, Checkpoint

    _check_one_seed_group(specs)
    data = load_data(specs[0])
    stats = data.channel_stats()  # what maps the images back to pixels (figures), the same for every seed
    scores = inputs.get("scores") or [None] * len(specs)
    checkpoints = []
    for spec, score in zip(specs, scores):
        seed = spec["seed"]
        out = Path(outputs[f"synthetic_s{seed}"])
        label = f"[distilled {spec['method']} ipc {spec['ipc']} s{seed}]"
        checkpoints.append(Checkpoint(out.parent / CHECKPOINT_FILE, cfg["distill"]["checkpoint_every"], label, keep=True))
        distill_set(spec, data, stats, out, Path(outputs[f"meta_s{seed}"]), score and Path(score), log, checkpoints[-1])
    for checkpoint in checkpoints:
        remove_checksummed(checkpoint.path)


def run_students(specs: list[dict], inputs: dict, outputs: dict, cfg: dict, log: Callable[[str], None] = print) -> None:
    """The seeds of one grid point (one spec each), in one process (config `stack_seeds`). The
    teacher input is one file, or one per seed when each seed has its own (chained replicates); so
    is the `class_scale` input (a teacher_ce score file: k_y for KD with `reshape`). The runs of a
    distillation experiment evaluate their seed's distilled set (`distilled`, one file per seed)."""
    out_dirs = [Path(outputs[f"run_s{spec['seed']}"]) for spec in specs]
    paths = {key: Path(value) if isinstance(value, str) else [Path(p) for p in value] for key, value in inputs.items()}
    if "distilled" in paths:
        evaluate_distilled(specs, out_dirs, paths["distilled"], log)
    else:
        run_seeds(
            specs,
            out_dirs,
            paths.get("teacher"),
            paths.get("scores"),
            log,
            paths.get("teacher_views"),
            stack=cfg["stack_seeds"],
            cutoff_paths=paths.get("cutoff_scores"),
            class_scale_path=paths.get("class_scale"),
            supervision_paths=paths.get("supervision"),
        )
    if not outputs[DONE].endswith("/metrics.json"):  # a seed group's record: every run is done
        write_json(outputs[DONE], {"runs": [{"seed": spec["seed"], "run_dir": str(d)} for spec, d in zip(specs, out_dirs)]})


# -- the work -------------------------------------------------------------------------------------


def provenance(spec: dict, device: torch.device) -> dict:
    """What every job's metadata file records of how it was made: its spec and settings hash, the
    code revision and the platform."""
    return {"spec": spec, "settings_hash": settings_hash(spec), "code_rev": code_revision(), **platform_info(device)}


def compute_score(spec: dict, out: Path, log: Callable[[str], None] = print, teacher_path: Path | None = None) -> None:
    """A pruning score of every training sample -> out (.npz: `scores`, `labels`, and any extra
    array the score returns, e.g. teacher_ce's `class_logit_std`) and its metadata (.json). A score
    whose settings name a teacher gets the trained teacher as `settings["teacher_model"]`. A score
    that trains checkpoints its runs beside `out` (`settings["checkpoints"]`, kdprune.pruning.runs),
    so a killed or preempted job resumes; they go once the score file is written."""
    t0 = time.perf_counter()
    method = spec["settings"].get("method", spec["method"])  # the registered score the block computes
    if SCORES.meta(method).get("needs_teacher") and not teacher_path:
        raise ValueError(f"score {spec['method']} needs a trained teacher: name its architecture as scores.{spec['method']}.teacher")
    device = pick_device(spec["device"])
    data = load_data(spec)
    accel = resolve_accel(spec["accel"], device)
    checkpoints = RunCheckpoints(out.with_suffix(""), settings_hash(spec))
    settings = {**spec["settings"], "checkpoints": checkpoints, **({"teacher_model": load_teacher(teacher_path)} if teacher_path else {})}
    scores, extras = score_and_extras(SCORES.get(method)(data, settings, spec["seed"], device, log, accel=accel))
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(data.y_train),) or not np.isfinite(scores).all():
        raise RuntimeError(
            f"score {spec['method']} returned {scores.shape} values (finite: {np.isfinite(scores).all()}), expected {len(data.y_train)} finite"
        )
    if {"scores", "labels"} & set(extras):
        raise RuntimeError(f"score {spec['method']} returned extra arrays named like the file's own: {sorted(extras)}")
    save_npz(out, scores=scores, labels=data.y_train.numpy(), **{name: np.asarray(value) for name, value in extras.items()})
    write_json(
        out.with_suffix(".json"),
        {
            **provenance(spec, device),
            "wall_seconds": time.perf_counter() - t0,
        },
    )
    checkpoints.remove()
    log(f"[score {spec['method']}] {len(scores)} scores in {time.perf_counter() - t0:.1f}s -> {out}")


def distill_set(
    spec: dict, data, stats: tuple, out: Path, meta: Path, scores_path: Path | None, log: Callable[[str], None] = print, checkpoint=None
) -> dict:
    """Distil the spec's selection of the real training images with its method (kdprune.distill),
    BiLP's causal-effect pruning on when `ite` is given -> out (images, labels: what an evaluation
    reads, with `stats`: the channel mean and std) and meta (the loss history, the resolved settings,
    the time spent and the ITE's share, over every attempt; the iteration this attempt resumed at).
    `checkpoint` (kdprune.distill.resume.Checkpoint): where the distillation saves and resumes."""
    from kdprune.distill import DISTILLERS
    from kdprune.distill.ite import CausalEffectFilter

    t0 = time.perf_counter()
    device = pick_device(spec["device"])
    subset = _subset(spec, data, scores_path, None, device, log)
    settings = dict(spec["settings"])
    ite = spec["ite"] and CausalEffectFilter(spec["ite"]["beta"], spec["ite"]["interval"], tails=spec["ite"]["tails"], exact=spec["ite"]["exact"])
    if ite:
        settings["real_batch_filter"] = ite
    result = DISTILLERS.get(spec["method"])(data, subset, spec["ipc"], settings, spec["seed"], device, log, checkpoint=checkpoint)
    seconds = time.perf_counter() - t0 + result["resumed"]["seconds"]  # with the earlier attempts' loop time
    mean, std = stats
    synthetic = {"images": result["images"], "labels": result["labels"], "mean": mean, "std": std}
    save_torch(out, {**synthetic, "method": spec["method"], "ipc": spec["ipc"], "dataset": data.name})
    info = {
        **provenance(spec, device),
        "settings": result["settings"],
        "history": result["history"],
        "real_used": len(subset),
        "distill_seconds": seconds,
        "ite_seconds": ite.seconds if ite else 0.0,
        "ite_refreshes": ite.refreshes if ite else 0,
        "resumed_at": result["resumed"]["iteration"],
        "wall_seconds": seconds,
    }
    write_json(meta, info)  # last: with the images written, the set is complete
    log(f"[distilled {spec['method']} ipc {spec['ipc']} s{spec['seed']}] from {len(subset)} real images in {seconds:.1f}s -> {out}")
    return info


def evaluate_distilled(specs: list[dict], out_dirs: list[Path], synthetic: list[Path], log: Callable[[str], None] = print) -> list[dict]:
    """Evaluate each seed's distilled set as DC/DM do (kdprune.distill.evaluate: `num_eval` fresh
    networks trained on it; final_acc is their mean test accuracy, acc_std their spread). Each run's
    metrics.json also carries its set's distillation time, real images used and ITE time."""
    from kdprune.distill.dsa import diff_augment
    from kdprune.distill.evaluate import evaluate_synthetic

    _check_one_seed_group(specs)
    device = pick_device(specs[0]["device"])
    data = load_data(specs[0])
    n_params = sum(p.numel() for p in _evaluated_network(specs[0], data).parameters())  # one network for every seed
    out = []
    for spec, out_dir, path in zip(specs, out_dirs, synthetic):
        t0 = time.perf_counter()
        synthetic_set = load_torch(path)
        recipe = spec["recipe"]
        strategy = recipe["augment"]
        settings = {**recipe, "augment": strategy and (lambda x, g, s=strategy: diff_augment(x, s, g))}
        result = evaluate_synthetic(synthetic_set["images"], synthetic_set["labels"], data, settings, spec["seed"], device, log)
        made = read_json(path.parent / "distilled.json")
        metrics = {
            **provenance(spec, device),
            "final_acc": result["mean"],
            "acc_std": result["std"],
            "accs": result["accs"],
            "num_eval": result["num_eval"],
            "epochs": result["passes"],
            "subset_size": len(synthetic_set["labels"]),  # what the evaluation trains on
            "n_test": len(data.y_test),
            "n_params": n_params,
            "train_seconds": result["train_seconds"],
            "wall_seconds": time.perf_counter() - t0,
            **{key: made[key] for key in ("real_used", "distill_seconds", "ite_seconds", "ite_refreshes")},
        }
        write_json(out_dir / "metrics.json", metrics)
        out.append(metrics)
    return out


def _evaluated_network(spec: dict, data) -> torch.nn.Module:
    recipe = spec["recipe"]
    return create_model(spec["arch"], data.num_classes, data.channels, data.image_size, width=recipe["width"], depth=recipe["depth"])


def compute_views(spec: dict, teacher_path: Path, out: Path, log: Callable[[str], None] = print) -> None:
    t0 = time.perf_counter()
    device = pick_device(spec["device"])
    accel = resolve_accel(spec["accel"], device)
    data = load_data(spec)
    teacher = load_teacher(teacher_path)
    table = compute_view_logits(teacher, data, device, accel)
    save_view_logits(out, table, teacher, accel, settings_hash(spec), data.augmentation)
    write_json(
        out.with_suffix(".json"),
        {
            "spec": spec,
            "shape": list(table.shape),
            "dtype": str(table.dtype),
            "accel": accel.as_dict(),
            "code_rev": code_revision(),
            "wall_seconds": time.perf_counter() - t0,
            **platform_info(device),
        },
    )
    log(f"[views {spec['arch']}] {tuple(table.shape)} {table.dtype} logits in {time.perf_counter() - t0:.1f}s -> {out}")


def load_data(spec: dict):
    """A job's dataset, with the training augmentation its spec resolved from the config."""
    augmentation = spec["augmentation"] and Augmentation(**spec["augmentation"])
    return load_dataset(spec["dataset"], spec["data_root"], spec["download"], augmentation)


def load_teacher(path: Path) -> torch.nn.Module:
    state = load_torch(path)
    model = create_model(state["arch"], state["num_classes"], state["in_channels"], state.get("image_size", 32))
    model.load_state_dict(state["state_dict"])
    return model.eval()


STACK_MODES = ("off", "sequential", "stacked", "auto")  # config `stack_seeds`; `off` is the workflow's one job per run


def run_training(
    spec: dict,
    out_dir: Path,
    teacher_path: Path | None = None,
    scores_path: Path | None = None,
    log: Callable[[str], None] = print,
    views_path: Path | None = None,
) -> dict:
    """Train a teacher or a student into out_dir (metrics.json, model.pt); resumable. A KD student
    reads its teacher's view logits from `views_path` (run_views) instead of running the teacher."""
    return run_seeds([spec], [out_dir], teacher_path, [scores_path], log, views_path)[0]


def run_seeds(
    specs: list[dict],
    out_dirs: list[Path],
    teacher_path: Path | list[Path] | None = None,
    scores_paths: list[Path | None] | None = None,
    log: Callable[[str], None] = print,
    views_path: Path | list[Path] | None = None,
    stack: str = "auto",
    cutoff_paths: list[Path | None] | None = None,
    class_scale_path: Path | list[Path] | None = None,
    supervision_paths: list[Path] | None = None,
) -> list[dict]:
    """Train the seeds of one grid point, its seed group (specs that differ only in their seed, the
    score file they read and, for chained replicates, their teacher's seed) in one process: one
    start-up, one dataset load, one teacher (or one per seed: `teacher_path` / `views_path` may be a
    list, one per seed). Each seed still gets its own run folder. `stack`: `stacked` trains them as
    one stacked network (kdprune.train.stacking: CIFAR ResNets, in-memory data, one teacher),
    `sequential` one after the other, `auto` stacks on CUDA only (on a CPU a stack is no faster than
    its students in turn). `cutoff_paths`: per seed, the score file a rule with a cutoff (ccs) drops
    by, when it is not the selection's own score file. `class_scale_path`: for a loss with `reshape`
    on (KD's MDSLR logit reshaping), the teacher_ce score file whose `class_logit_std` is k_y; one
    for every seed (as MDSLR: one std file per teacher) or one per seed (then the seeds train in
    turn). Required when `reshape` is on. `supervision_paths`: for a loss with `supervise` < 1
    (P3's data selection), per seed the ds_influence score file whose highest-scored `supervise`
    share of the run's subset the teacher supervises (the seeds then train in turn)."""
    t0 = time.perf_counter()
    _check_one_seed_group(specs)
    spec = specs[0]
    scores_paths = scores_paths or [None] * len(specs)
    cutoff_paths = cutoff_paths or [None] * len(specs)
    device = pick_device(spec["device"])
    accel = resolve_accel(spec["accel"], device)
    data = load_data(spec)
    subsets = [_subset(s, data, path, cutoff, device, log) for s, path, cutoff in zip(specs, scores_paths, cutoff_paths)]
    loss = make_loss(spec["loss"], **spec["loss_params"])
    needs_teacher = getattr(loss, "needs_teacher", False)
    teachers = _teachers_of_seeds(len(specs), teacher_path, views_path, device, data) if needs_teacher else [(None, None, None)] * len(specs)
    losses = _losses_of_seeds(loss, len(specs), class_scale_path, data, device)
    models = [_fresh_model(s, data, device) for s in specs]
    recipe = Recipe.from_dict(spec["recipe"])
    teachers_n = len({(id(t), id(lo)) for t, lo in zip(teachers, losses)})  # one tuple per teacher file, one loss per k_y file
    supervised = _supervised_of_seeds(specs, subsets, supervision_paths, log)
    mode = _stack_mode(
        stack, device, data, models[0], subsets, log, teachers=teachers_n, infobatch=recipe.infobatch is not None, supervised=bool(supervised)
    )
    labels = [f"{s['role']} {s['arch']} s{s['seed']}" for s in specs]
    for s, label, subset in zip(specs, labels, subsets):
        log(f"[{label}] {len(subset)}/{len(data.y_train)} training images, {s['recipe']['epochs']} epochs on {device} ({mode})")
    common = [dict(device=device, teacher=teacher, teacher_views=views, accel=accel, log=log) for teacher, views, _ in teachers]
    extras = [
        {"teacher_params": params, "teacher_views": views is not None, "stack": {"mode": mode, "size": len(specs)}} for _, views, params in teachers
    ]
    if supervised:  # which samples the teacher supervised (the spec says only the share)
        common = [{**c, "supervised": chosen} for c, chosen in zip(common, supervised)]
        extras = [
            {**e, "supervised_size": len(chosen), "supervision_file": str(path)} for e, chosen, path in zip(extras, supervised, supervision_paths)
        ]
    if getattr(loss, "reshape", False):  # which k_y the run reshaped with (the spec does not say)
        scale_files = class_scale_path if isinstance(class_scale_path, list | tuple) else [class_scale_path] * len(specs)
        extras = [{**extra, "class_scale_file": str(path)} for extra, path in zip(extras, scale_files)]
    if mode == "stacked":
        checkpoint = out_dirs[0] / "stack-checkpoint.pt"
        results = fit_stack(
            models,
            data,
            subsets,
            recipe,
            losses[0],  # stacked: one loss (one k_y) for every seed
            seeds=[s["seed"] for s in specs],
            checkpoint=checkpoint,
            run_hash=settings_hash({"stack": specs}),
            labels=labels,
            **common[0],  # stacked: one teacher for every seed
        )
        share = (time.perf_counter() - t0) / len(specs)  # the job's time, split evenly
        out = [
            _save_run(s, d, m, r, data, subset, share, device, {**extra, **_agreement(m, data, subset, device, t, accel)}, label, log)
            for s, d, m, r, subset, label, extra, t in zip(specs, out_dirs, models, results, subsets, labels, extras, teachers)
        ]
        remove_checksummed(checkpoint)
        return out
    out = []
    setup = (time.perf_counter() - t0) / len(specs)
    for s, d, label, subset, model, kwargs, extra, objective, t in zip(specs, out_dirs, labels, subsets, models, common, extras, losses, teachers):
        t1 = time.perf_counter()
        result = fit(
            model, data, subset, recipe, objective, seed=s["seed"], checkpoint=d / "checkpoint.pt", run_hash=settings_hash(s), label=label, **kwargs
        )
        extra = {**extra, **_agreement(model, data, subset, device, t, accel, kwargs.get("supervised"))}
        out.append(_save_run(s, d, model, result, data, subset, setup + time.perf_counter() - t1, device, extra, label, log))
    # Checkpoints go only now: if the job dies on a later seed, the workflow deletes every output of
    # the job, and the finished seeds' last checkpoints make their rerun a matter of seconds.
    for d in out_dirs:
        remove_checksummed(d / "checkpoint.pt")
    return out


def _agreement(model: torch.nn.Module, data, subset: np.ndarray, device: torch.device, teacher: tuple, accel, supervised=None) -> dict:
    """A KD student's and its teacher's accuracy and agreement on the student's kept training images
    (kdprune.train.agreement, P2-C5; with P3's data selection, the overlap of the supervised samples
    and the teacher's mistakes); in-memory data only (a streamed training set would cost a pass over
    it per run)."""
    model_t, views, _ = teacher
    if (model_t is None and views is None) or not hasattr(data, "x_train"):
        return {}
    return kept_subset_agreement(model, data, subset, device, teacher=model_t, views=views, accel=accel, supervised=supervised)


def _teachers_of_seeds(n: int, teacher: Path | list[Path] | None, views: Path | list[Path] | None, device: torch.device, data) -> list[tuple]:
    """(teacher model or None, view table or None, teacher parameter count) of each of `n` seeds,
    from one file for all or one per seed; a file read by several seeds is loaded once."""
    paths = views if views is not None else teacher
    paths = list(paths) if isinstance(paths, list | tuple) else [paths] * n
    if len(paths) != n or None in paths:
        raise ValueError(f"a KD job of {n} seeds needs one teacher file, or one per seed: got {paths}")
    loaded: dict[Path, tuple] = {}
    for path in dict.fromkeys(paths):
        if views is not None:
            table, meta = load_view_logits(path, device, data.augmentation)
            loaded[path] = (None, table, meta["teacher_params"])
        else:
            model = load_teacher(path)
            loaded[path] = (model, None, sum(p.numel() for p in model.parameters()))
    return [loaded[path] for path in paths]


def _supervised_of_seeds(specs: list[dict], subsets: list[np.ndarray], paths: list[Path] | None, log: Callable[[str], None]) -> list[np.ndarray]:
    """P3's data selection: per seed, the round(supervise * subset size) samples of its subset with
    the highest ds_influence scores (ties by sample index), or [] when the loss supervises all."""
    share = float(specs[0]["loss_params"].get("supervise", 1.0))
    if share >= 1.0:
        return []
    if not paths or len(paths) != len(specs):
        raise ValueError(f"a loss with supervise = {share:g} needs one ds_influence score file per seed, got {paths}")
    chosen = []
    for spec, subset, path in zip(specs, subsets, paths):
        ordered = np.sort(subset)
        order = np.argsort(-_read_scores(Path(path))[ordered], kind="stable")  # highest first, ties by index
        chosen.append(np.sort(ordered[order[: round(share * len(subset))]]))
        log(
            f"[{spec['role']} {spec['arch']} s{spec['seed']}] the teacher supervises {len(chosen[-1])} of {len(subset)} samples (data selection, {path})"
        )
    return chosen


def _losses_of_seeds(loss, n: int, class_scale: Path | list[Path] | None, data, device: torch.device) -> list:
    """The loss of each of `n` seeds: `loss` itself, or, with `reshape` on, a copy holding k_y from
    the seed's class-scale file (one file for all, or one per seed; a file read by several seeds is
    loaded once)."""
    if not getattr(loss, "reshape", False):
        return [loss] * n
    paths = list(class_scale) if isinstance(class_scale, list | tuple) else [class_scale] * n
    if class_scale is None or len(paths) != n or None in paths:
        raise ValueError(
            f"KD with reshape needs k_y: give the job a teacher_ce score file (class_scale_path), one for all {n} seeds or one per seed; got {class_scale}"
        )
    scaled = {path: loss.with_class_scale(torch.as_tensor(read_class_scale(path, data), device=device)) for path in dict.fromkeys(paths)}
    return [scaled[path] for path in paths]


def read_class_scale(path: Path, data) -> np.ndarray:
    """k_y (float32, one per class) from a teacher_ce score file of this dataset."""
    with np.load(path, allow_pickle=False) as f:
        if "class_logit_std" not in f.files:
            raise ValueError(f"{path} has no class_logit_std (k_y): it is not a teacher_ce score file")
        scale, labels = f["class_logit_std"].astype(np.float32), f["labels"]
    if not np.array_equal(labels, data.y_train.numpy()):
        raise ValueError(f"{path} was scored on other training labels than the dataset {data.name} has")
    present = np.unique(labels)
    if scale.shape != (data.num_classes,) or not np.isfinite(scale[present]).all():
        raise ValueError(f"{path}: class_logit_std must hold a finite value for every class of {data.name}, got shape {scale.shape}")
    return scale


def _check_one_seed_group(specs: list[dict]) -> None:
    def without_seed(spec: dict) -> dict:
        rest = {k: v for k, v in spec.items() if k not in ("seed", "score_spec", "cutoff_spec")}
        if rest.get("distilled_spec"):  # seed s evaluates distilled set s
            rest["distilled_spec"] = without_seed(rest["distilled_spec"])
        rest["axes"] = {k: v for k, v in spec.get("axes", {}).items() if k not in ("seed", "teacher_seed")}
        if rest.get("teacher_spec"):  # a chained replicate's teacher has the run's seed
            rest["teacher_spec"] = without_seed(rest["teacher_spec"])
        return rest

    first = without_seed(specs[0])
    for spec in specs[1:]:
        other = without_seed(spec)
        if other != first:
            # name a setting, not the `axes` summary of the settings
            key = next(k for k in sorted(set(first) | set(other), key=lambda k: (k == "axes", k)) if first.get(k) != other.get(k))
            raise ValueError(f"the runs of one job must differ only in seed, but `{key}` differs: {first.get(key)!r} vs {other.get(key)!r}")


def _read_scores(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    with np.load(path, allow_pickle=False) as f:
        return f["scores"]


def _subset(spec: dict, data, scores_path: Path | None, cutoff_path: Path | None, device: torch.device, log: Callable[[str], None]) -> np.ndarray:
    if (
        spec["selection_method"] == FULL or spec["keep"] >= 1.0 or spec.get("recipe", {}).get("infobatch")
    ):  # the whole data (a dynamic method prunes while it trains)
        return np.arange(len(data.y_train))
    scores = _read_scores(scores_path)
    if scores is None:  # a teacher on a random fraction: the random score, computed here
        scores = SCORES.get("random")(data, {}, spec["seed"], device, log)
    rule = spec["selection_rule"] or "hardest"
    cutoff = _read_scores(cutoff_path)
    return select_indices(scores, data.y_train.numpy(), spec["keep"], rule, seed=spec["seed"], cutoff_scores=cutoff, **spec["selection"])


def _stack_mode(
    stack: str,
    device: torch.device,
    data,
    model: torch.nn.Module,
    subsets: list,
    log: Callable[[str], None],
    teachers: int = 1,
    infobatch: bool = False,
    supervised: bool = False,
) -> str:
    """`stacked` or `sequential` for the seeds of one job (`single` for one run). InfoBatch runs
    (kdprune.train.infobatch) never stack: each seed's epochs keep their own samples."""
    if stack not in STACK_MODES:
        raise ValueError(f"stack: {stack!r} is not one of {', '.join(STACK_MODES)}")
    if len(subsets) == 1:
        return "single"
    if stack in ("off", "sequential") or (stack == "auto" and device.type != "cuda"):
        return "sequential"
    why_not = (
        f"the architecture ({type(model).__name__}) is not a CIFAR ResNet, the one family kdprune.train.stacking stacks"
        if not isinstance(model, CifarResNet)
        else "the dataset is streamed from disk"
        if not hasattr(data, "x_train")
        else "the subsets differ in size"
        if len({len(s) for s in subsets}) > 1
        else "each seed has its own teacher (chained replicates) or k_y file"
        if teachers > 1
        else "InfoBatch prunes each seed's epochs by its own losses (epochs of unequal length)"
        if infobatch
        else "data selection gives each seed its own supervised samples"
        if supervised
        else None
    )
    if why_not:
        log(f"[stack] training the seeds one after the other: {why_not}")
        return "sequential"
    return "stacked"


def _fresh_model(spec: dict, data, device: torch.device) -> torch.nn.Module:
    # Seeded per run: the same initial weights whether the seeds train stacked, in turn or alone.
    seed_everything(spec["seed"], device)
    return create_model(spec["arch"], data.num_classes, data.channels, data.image_size)


def _save_run(
    spec: dict,
    out_dir: Path,
    model: torch.nn.Module,
    result: dict,
    data,
    subset: np.ndarray,
    wall_seconds: float,
    device: torch.device,
    extra: dict,
    label: str,
    log: Callable[[str], None],
) -> dict:
    save_torch(
        out_dir / "model.pt",
        {
            "arch": spec["arch"],
            "num_classes": data.num_classes,
            "in_channels": data.channels,
            "image_size": data.image_size,
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        },
    )
    metrics = {
        **provenance(spec, device),
        **extra,
        "subset_size": len(subset),
        "n_test": len(data.y_test),  # the verdicts' binomial floor on a contrast's spread (kdprune/report/stats.py)
        "subset_sha": hashlib.sha256(np.asarray(subset, dtype=np.int64).tobytes()).hexdigest()[:12],
        "wall_seconds": wall_seconds,
        **result,
    }
    write_json(out_dir / "metrics.json", metrics)  # last: its presence means the run is complete
    log(
        f"[{label}] final acc {100 * result['final_acc']:.2f}%, best {100 * result['best_acc']:.2f}% "
        f"(epoch {result['best_epoch']}), {wall_seconds:.1f}s"
    )
    return metrics
