"""The resolved config -> the jobs of the workflow. Pure Python (no Snakemake), so the grid can be
tested and inspected by hand.

Paths carry the axes, relative to results/<scale>/<dataset slug>/:
  teachers/<arch>-<recipe>-s<seed>/
  scores/<method>-s<seed>.npz
  students/<arch>-<recipe>/<selection>/keep<f>/<loss>/s<seed>/
Deduplication is by path: a run that two experiments share (or keep 1.0 under every method) is
one job."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Iterator

from kdprune.data import dataset_slug


@dataclass(frozen=True)
class TeacherJob:
    dataset: str
    arch: str
    recipe: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.arch}-{self.recipe}-s{self.seed}"

    @property
    def dir(self) -> str:
        return f"{dataset_slug(self.dataset)}/teachers/{self.key}"


@dataclass(frozen=True)
class ScoreJob:
    dataset: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.method}-s{self.seed}"

    @property
    def path(self) -> str:
        return f"{dataset_slug(self.dataset)}/scores/{self.key}.npz"


@dataclass(frozen=True)
class StudentJob:
    dataset: str
    arch: str
    recipe: str
    method: str  # "full" when keep == 1
    rule: str | None  # None for full and random subsets
    keep: float
    loss: str
    seed: int
    teacher: TeacherJob | None = None
    alpha: float | None = None
    temperature: float | None = None

    @property
    def score(self) -> ScoreJob | None:
        return None if self.method == "full" else ScoreJob(self.dataset, self.method, self.seed)

    @property
    def selection(self) -> str:
        # Rule parameters (class balance, medium window centre ...) are global `selection:`
        # settings: recorded in each run's spec, and a change reruns the runs, not new paths.
        return self.method if self.method in ("full", "random") else f"{self.method}-{self.rule}"

    @property
    def loss_key(self) -> str:
        if self.teacher is None:
            return self.loss
        return f"{self.loss}-{self.teacher.key}-a{self.alpha:g}-T{self.temperature:g}"

    @property
    def key(self) -> str:
        return f"{self.arch}-{self.recipe}/{self.selection}/keep{self.keep:g}/{self.loss_key}/s{self.seed}"

    @property
    def dir(self) -> str:
        return f"{dataset_slug(self.dataset)}/students/{self.key}"

    def axes(self) -> dict:
        """The run's coordinates, as columns of the runs table."""
        out = asdict(self)
        out.pop("teacher")
        out.update(
            dataset=dataset_slug(self.dataset), selection=self.selection,
            teacher=self.teacher.arch if self.teacher else None,
            teacher_seed=self.teacher.seed if self.teacher else None,
            teacher_recipe=self.teacher.recipe if self.teacher else None,
        )
        return out


def _students(cfg: dict, exp: dict) -> Iterator[StudentJob]:
    from kdprune.losses import LOSSES

    axes = itertools.product(
        exp.get("dataset", [cfg["dataset"]]), exp["student"], exp.get("recipe", ["student"]),
        exp["method"], exp.get("rule", ["hardest"]), exp["keep"], exp["loss"], exp.get("seed", cfg["seeds"]),
    )
    for dataset, arch, recipe, method, rule, keep, loss, seed in axes:
        full = keep >= 1.0
        base = dict(
            dataset=dataset, arch=arch, recipe=recipe, keep=float(keep), loss=loss, seed=seed,
            method="full" if full else method,
            # A method whose settings name a rule always uses it (moderate coreset: medium band).
            rule=None if full or method == "random" else cfg["scores"].get(method, {}).get("rule", rule),
        )
        if not LOSSES.get(loss).needs_teacher:
            yield StudentJob(**base)
            continue
        for t_arch, t_seed, alpha, temp in itertools.product(
            exp["teacher"], exp.get("teacher_seed", [0]), exp.get("alpha", [0.9]), exp.get("temperature", [4.0])
        ):
            teacher = TeacherJob(dataset, t_arch, cfg["teacher_recipe"], t_seed)
            yield StudentJob(**base, teacher=teacher, alpha=float(alpha), temperature=float(temp))


def dedupe(jobs) -> list:
    return list(dict.fromkeys(jobs))


@dataclass
class Grid:
    experiments: dict[str, list[StudentJob]]

    @classmethod
    def from_config(cls, cfg: dict) -> "Grid":
        return cls({name: dedupe(_students(cfg, exp)) for name, exp in cfg["experiments"].items()})

    @property
    def students(self) -> list[StudentJob]:
        return dedupe(itertools.chain.from_iterable(self.experiments.values()))

    @property
    def teachers(self) -> list[TeacherJob]:
        return dedupe(s.teacher for s in self.students if s.teacher is not None)

    @property
    def scores(self) -> list[ScoreJob]:
        return dedupe(s.score for s in self.students if s.score is not None)
