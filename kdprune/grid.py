"""The resolved config -> the jobs of the workflow. Pure Python (no Snakemake), so the grid can be
tested and inspected by hand.

Paths carry the axes, relative to results/<scale>/<dataset slug>/:
  teachers/<arch>-<recipe>-s<seed>/
  scores/<method>-s<seed>.npz
  students/<arch>-<recipe>/<selection>/keep<f>/<loss>/s<seed>/
Deduplication is by path: a run that two experiments share (or keep 1.0 under every method) is
one run. A student's folder without its seed is its cell: the seeds of one grid point, which the
workflow trains in one job (config `stack_seeds`)."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Iterator

from kdprune.data import dataset_slug, split_spec


@dataclass(frozen=True)
class TeacherJob:
    dataset: str
    arch: str
    recipe: str
    seed: int
    data_keep: float = 1.0  # fraction of the training set the teacher sees (random, class-balanced)

    @property
    def key(self) -> str:
        part = f"-f{self.data_keep:g}" if self.data_keep < 1.0 else ""
        return f"{self.arch}-{self.recipe}{part}-s{self.seed}"

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
    score_method: str | None = None  # the score a method alias reads (`ccs: {score: el2n, rule: ccs}`)

    @property
    def score(self) -> ScoreJob | None:
        return None if self.method == "full" else ScoreJob(self.dataset, self.score_method or self.method, self.seed)

    @property
    def selection(self) -> str:
        # Rule parameters (class balance, medium window centre ...) are global `selection:`
        # settings: recorded in each run's spec, and a change reruns the runs, not new paths.
        if self.method in ("full", "random") or self.rule == self.method:
            return self.method
        return f"{self.method}-{self.rule}"

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

    @property
    def cell_dir(self) -> str:
        """The run folder's parent: every seed of this grid point (one job under `stack_seeds`)."""
        return self.dir.rpartition("/")[0]

    def axes(self) -> dict:
        """The run's coordinates, as columns of the runs table."""
        out = asdict(self)
        out.pop("teacher")
        out.update(
            dataset=dataset_slug(self.dataset), selection=self.selection,
            teacher=self.teacher.arch if self.teacher else None,
            teacher_seed=self.teacher.seed if self.teacher else None,
            teacher_recipe=self.teacher.recipe if self.teacher else None,
            teacher_keep=self.teacher.data_keep if self.teacher else None,
            label_noise=dict(split_spec(self.dataset)[2]).get("noise", 0.0),
        )
        return out


def _students(cfg: dict, exp: dict) -> Iterator[StudentJob]:
    from kdprune.losses import LOSSES

    axes = itertools.product(
        exp.get("dataset", [cfg["dataset"]]), exp.get("label_noise", [0.0]), exp["student"], exp.get("recipe", ["student"]),
        exp["method"], exp.get("rule", ["hardest"]), exp["keep"], exp["loss"], exp.get("seed", cfg["seeds"]),
    )
    for dataset, noise, arch, recipe, method, rule, keep, loss, seed in axes:
        dataset = f"{dataset}+noise{noise:g}" if noise > 0 else dataset
        full = keep >= 1.0
        settings = cfg["scores"].get(method, {})
        base = dict(
            dataset=dataset, arch=arch, recipe=recipe, keep=float(keep), seed=seed,
            method="full" if full else method,
            # A method whose settings name a rule always uses it (moderate coreset: medium band).
            rule=None if full or method == "random" else settings.get("rule", rule),
            score_method=None if full else settings.get("score"),
        )
        if not LOSSES.get(loss).needs_teacher:
            yield StudentJob(**base, loss=loss)
            continue
        for t_arch, t_seed, t_keep, alpha, temp in itertools.product(
            exp["teacher"], exp.get("teacher_seed", [0]), exp.get("teacher_keep", [1.0]), exp.get("alpha", [0.9]),
            exp.get("temperature", [4.0]),
        ):
            if alpha == 0:  # (1 - 0) * CE + 0 * KD is CE: one run, no teacher
                yield StudentJob(**base, loss="ce")
                continue
            teacher = TeacherJob(dataset, t_arch, exp.get("teacher_recipe", cfg["teacher_recipe"]), t_seed, float(t_keep))
            yield StudentJob(**base, loss=loss, teacher=teacher, alpha=float(alpha), temperature=float(temp))


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

    @property
    def cells(self) -> dict[str, list[StudentJob]]:
        """{cell_dir: its students, by seed}: the seeds of a grid point, trained by one job when
        the config's `stack_seeds` is not `off`."""
        out: dict[str, list[StudentJob]] = {}
        for s in self.students:
            out.setdefault(s.cell_dir, []).append(s)
        return {cell: sorted(jobs, key=lambda j: j.seed) for cell, jobs in out.items()}
