"""metrics.json files -> the tidy runs table: one row per run, every axis and metric, the settings
hash and the code revision."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdprune.files import atomic_path, read_json
from kdprune.losses import LOSSES
from kdprune.plan.config import omitted_parameters

METRIC_COLUMNS = [
    "final_acc",
    "best_acc",
    "best_epoch",
    "epochs",
    "subset_size",
    "n_test",
    "n_params",
    "teacher_params",
    "wall_seconds",
    "train_seconds",
    "train_images_per_s",
    "teacher_views",
    "fast_path_fallback",  # why the run gave up its CUDA graph and trained eagerly (kdprune/train/step.py); empty if it did not
    "sample_steps",  # images trained on, summed over epochs (InfoBatch's cost; P2-C3 matches it)
    "student_acc_kept",  # teacher and student on the kept training images (kdprune/train/agreement.py)
    "teacher_acc_kept",
    "ts_gap",
    "agreement_kept",
    "teacher_wrong_kept",  # P3: what label revision can change, and how much of it data selection supervises
    "supervised_share",
    "wrong_supervised",
    "acc_std",  # P4: a distilled set's evaluation, the spread of its num_eval networks' accuracies
    "num_eval",
    "real_used",  # the real training images its distillation read (after static pruning)
    "distill_seconds",  # the distillation's time, and the causal-effect criterion's part of it
    "ite_seconds",
    "checkpoint_sha256",  # an imported teacher's file
    "settings_hash",
    "code_rev",
    "device",
    "torch",  # the library versions the run trained with (kdprune.provenance.LIBRARIES)
    "torchvision",
    "numpy",
]
TIMING_COLUMNS = ["wall_seconds", "train_seconds", "train_images_per_s", "distill_seconds", "ite_seconds"]  # vary between identical runs


def runs_frame(metrics_paths: list[Path], preset: str) -> pd.DataFrame:
    rows = []
    for path in metrics_paths:
        m = read_json(path)
        row = {
            "preset": preset,
            **m["spec"]["axes"],
            "budget": m["spec"]["recipe"].get("budget"),  # none for a distilled set's evaluation
            **{c: m.get(c) for c in METRIC_COLUMNS},
            "precision": m.get("accel", {}).get("precision", "fp32"),
            "cuda_graphs": m.get("accel", {}).get("cuda_graphs", False),
            # how the run's job trained it: single | sequential | stacked (with `stack_size` - 1 other seeds)
            "stack_mode": m.get("stack", {}).get("mode", "single"),
            "stack_size": m.get("stack", {}).get("size", 1),
            "run_dir": str(Path(path).parent),
        }
        rows.append(row)
    return with_omitted_parameters(pd.DataFrame(rows))


def with_omitted_parameters(df: pd.DataFrame) -> pd.DataFrame:
    """A loss parameter that runs at one value do not carry (schema `x-omit`: KD's `reshape` off)
    filled in for that loss's rows, so claims can name it either way."""
    for loss in LOSSES.names():
        for name, value in omitted_parameters(loss).items():
            rows = df["loss"] == loss if "loss" in df else pd.Series(False, index=df.index)
            if rows.any():
                column = df[name] if name in df else pd.Series(float("nan"), index=df.index)
                df[name] = column.where(~rows | column.notna(), value)
    return df


def write_runs_table(metrics_paths: list[Path], out: Path, preset: str) -> pd.DataFrame:
    df = runs_frame(metrics_paths, preset)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df


def read_runs_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def with_full_data_in_every_selection(runs: pd.DataFrame) -> pd.DataFrame:
    """A keep-1.0 run belongs to every pruning method's curve (it is one run, whatever the method)."""
    full = runs[runs["selection"] == "full"]
    methods = [s for s in runs["selection"].unique() if s != "full"]
    return pd.concat([runs[runs["selection"] != "full"], *(full.assign(selection=m) for m in methods)], ignore_index=True)


def ce_as_alpha_zero(runs: pd.DataFrame) -> pd.DataFrame:
    """A CE run is the KD loss at alpha = 0 (the grid runs it once, without a teacher)."""
    return runs.assign(alpha=runs["alpha"].where(runs["loss"] != "ce", 0.0)) if "alpha" in runs else runs
