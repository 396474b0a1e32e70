"""CPU timing of a grid point's 3 seeds trained in one job, one after the other vs as one stacked
network (docs/performance.md, `stack_seeds`). Run from the repository root:
    python scripts/bench_stack_cpu.py
The CIFAR-10 subset row needs ../shared/data/cifar10_subset.npz."""

import tempfile
import time
from pathlib import Path

import torch

from kdprune.jobs.runners import run_seeds
from kdprune.plan.config import load
from kdprune.plan.grid import ScoreJob, StudentJob
from kdprune.plan.kinds import student_spec

torch.set_num_threads(1)
SEEDS = (0, 1, 2)
cfg = load(Path("config.yaml"), {"preset": "smoke", "device": "cpu"})
for dataset, epochs in [("digits", 10), ("npz:../shared/data/cifar10_subset.npz", 2)]:
    cfg["recipes"]["student"]["epochs"] = epochs
    jobs = [StudentJob(dataset, "resnet8", "student", "random", None, 0.5, "ce", seed, score=ScoreJob(dataset, "random", seed)) for seed in SEEDS]
    specs = [student_spec(cfg, job) for job in jobs]  # no score file: the random score is drawn in the job
    for mode in ("sequential", "stacked"):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            runs = run_seeds(specs, [Path(tmp) / f"s{s}" for s in SEEDS], log=lambda msg: None, stack=mode)
            wall = time.perf_counter() - t0
        print(
            f"{dataset}, resnet8, {epochs} epochs, {len(SEEDS)} seeds, {mode}: {wall:.1f} s wall, "
            f"{sum(r['train_seconds'] for r in runs):.1f} s training",
            flush=True,
        )
