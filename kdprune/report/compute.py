"""What the grid cost, and what a bigger grid will cost.

`compute_summary`: the wall time of every finished run (teachers, teacher views, scores, students)
per paper and role, and the GPU hours among them; written next to the ledger by `all_figures`. A run
shared by two papers (a teacher, a score) counts in each paper's row and once in the total. The
seeds of a seed group trained by one job (`stack_seeds`) share its wall time evenly.

`estimate_grid`: the device hours of another preset's grid (e.g. `paper`), extrapolated from a
measured runs table (e.g. `small`'s): each run costs (images it trains on) / (images per second
measured for its architecture and kind of run: CE or KD) on the device of the measurements. A
stacked run's images per second are its stack's, so measured stacks extrapolate to stacks.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from kdprune.data import DATASETS, augmentation_of, split_spec
from kdprune.files import atomic_path, read_json, write_text
from kdprune.plan.grid import Grid
from kdprune.report.markdown import format_markdown_table
from kdprune.train.loop import clock

VIEW_PASS_COST = 1 / 3  # an inference forward costs about a third of a training step (fwd + bwd)


def _role(path: Path) -> str:
    if path.name == "views.json":
        return "teacher views"
    kinds = {"teachers": "teacher", "students": "student", "scores": "score", "distilled": "distilled set"}
    return kinds[next(p for p in path.parts if p in kinds)]


def compute_summary(files_by_paper: dict[str, list[str]]) -> pd.DataFrame:
    rows = []
    for paper, files in files_by_paper.items():
        for f in files:
            m = read_json(f)
            rows.append(
                {
                    "paper": paper,
                    "file": str(f),
                    "role": _role(Path(f)),
                    "wall_seconds": m.get("wall_seconds") or 0.0,
                    "device": m.get("device", "cpu"),
                }
            )
    jobs = pd.DataFrame(rows, columns=["paper", "file", "role", "wall_seconds", "device"])
    jobs["gpu_seconds"] = jobs["wall_seconds"].where(jobs["device"].str.startswith("cuda"), 0.0)
    per_paper = jobs.groupby(["paper", "role"], as_index=False).agg(
        runs=("file", "size"), wall_seconds=("wall_seconds", "sum"), gpu_seconds=("gpu_seconds", "sum")
    )
    unique = jobs.drop_duplicates("file")
    total = pd.DataFrame(
        [
            {
                "paper": "all (shared runs once)",
                "role": "all",
                "runs": len(unique),
                "wall_seconds": unique["wall_seconds"].sum(),
                "gpu_seconds": unique["gpu_seconds"].sum(),
            }
        ]
    )
    out = pd.concat([per_paper, total], ignore_index=True)
    out["wall_hours"] = out.pop("wall_seconds") / 3600
    out["gpu_hours"] = out.pop("gpu_seconds") / 3600
    return out


def write_compute_summary(files_by_paper: dict[str, list[str]], out_dir: Path, preset: str) -> pd.DataFrame:
    table = compute_summary(files_by_paper)
    with atomic_path(Path(out_dir) / "compute.csv") as tmp:
        table.to_csv(tmp, index=False)
    shown = table.assign(wall=(table["wall_hours"] * 3600).map(clock), gpu=(table["gpu_hours"] * 3600).map(clock)).drop(
        columns=["wall_hours", "gpu_hours"]
    )
    write_text(
        Path(out_dir) / "compute.md",
        f"# Compute used by preset `{preset}`\n\nWall time of every run of the grid "
        "(h:mm:ss, summed over runs, whatever ran in parallel; the seeds trained by one job share its time); `gpu` is the wall time of the runs that ran on a GPU. `compute.csv` has the same in hours.\n\n"
        + format_markdown_table(shown)
        + "\n",
    )
    return table


# -- extrapolation ---------------------------------------------------------------------------------


def measured_throughput(runs: pd.DataFrame) -> dict[tuple[str, bool], float]:
    """Median training images/s per (architecture, KD?) over the measured runs (teachers: CE)."""
    runs = runs.assign(kd=runs["loss"].fillna("ce") != "ce", arch=runs["arch"])
    return runs.groupby(["arch", "kd"])["train_images_per_s"].median().to_dict()


@functools.cache  # estimate_grid asks once per run; an npz: dataset is loaded once
def training_images(dataset: str) -> int:
    """Training images of a dataset spec: a registered set's declared geometry, else its file's."""
    geometry = DATASETS.meta(split_spec(dataset)[0]).get("geometry")
    if geometry:
        return geometry[0]
    from kdprune.data.images import load_dataset

    return len(load_dataset(dataset, download=False).y_train)


def estimate_grid(cfg: dict, measured: pd.DataFrame) -> pd.DataFrame:
    """Estimated device hours per paper and role of the grid of the resolved config `cfg`."""
    speed = measured_throughput(measured)
    grid = Grid.from_config(cfg)
    paper_of = {name: exp["paper"] for name, exp in cfg["experiments"].items()}
    rows = []

    def add(paper: str, role: str, key: str, images: float, arch: str, kd: bool) -> None:
        ips = speed.get((arch, kd)) or (speed.get((arch, False)) if kd else None)
        ips = None if ips is None or pd.isna(ips) else ips  # no run of the architecture measured its speed
        rows.append({"paper": paper, "role": role, "job": key, "seconds": images / ips if ips else float("nan"), "unmeasured": None if ips else arch})

    for name, students in grid.experiments.items():
        paper = paper_of[name]
        for s in students:
            n = training_images(s.dataset)
            if s.distilled is not None:  # P4: a distillation's cost is not images x epochs; not extrapolated
                rows.append({"paper": paper, "role": "distilled set", "job": s.distilled.dir, "seconds": float("nan"), "unmeasured": "distillation"})
            else:
                add(paper, "student", s.dir, cfg["recipes"][s.recipe]["epochs"] * round(s.keep * n), s.arch, s.teacher is not None)
            if s.teacher is not None:
                t = s.teacher
                add(paper, "teacher", t.dir, cfg["recipes"][t.recipe]["epochs"] * round(t.keep * n), t.arch, False)
                if t.views:
                    views = augmentation_of(t.dataset, cfg["augmentation"]).views  # crop offsets x flips
                    add(paper, "teacher views", t.dir + "/views", VIEW_PASS_COST * views * n, t.arch, False)
            for score in s.score_jobs:
                settings = cfg["scores"][score.method]
                if score.teacher is not None and "recipe" not in settings:
                    # a score of a trained teacher (teacher_ce, herding): one inference pass over the data
                    add(paper, "score", score.path, VIEW_PASS_COST * n, score.teacher.arch, False)
                elif score.method != "random":  # training runs (ds_influence too, besides its teacher's pass)
                    epochs_run = settings.get("epoch") or cfg["recipes"][settings["recipe"]]["epochs"]  # no epoch: a full run
                    add(paper, "score", score.path, settings.get("runs", 1) * epochs_run * n, settings["arch"], False)
    jobs = pd.DataFrame(rows).drop_duplicates(["paper", "job"])
    out = jobs.groupby(["paper", "role"], as_index=False).agg(
        runs=("job", "size"),
        hours=("seconds", lambda s: s.sum() / 3600),
        unmeasured_archs=("unmeasured", lambda u: ", ".join(sorted(set(u.dropna())))),
    )
    return out
