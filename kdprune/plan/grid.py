"""The resolved config -> the jobs of the workflow. Pure Python (no Snakemake, no torch), so the grid
can be tested and inspected by hand.

An experiment's lists are axes; its grid points are their product, each trained with every seed
(a seed group: one job under `stack_seeds`). A loss expands over its own parameters
(`loss: {kd: {alpha: [...], temperature: [...]}}`) and, when it needs a teacher, over the teacher
axes (`teacher`, `teacher_seed`, `teacher_keep`). Jobs link to what they read (typed upstream
links): a student to its teacher, its score and the score its rule cuts by (CCS: `cutoff_score`,
when it is another score), a score to a teacher when its settings name one.

A distillation experiment (P4: a `distill` mapping, method -> {ipc, ite}) makes, per grid point and
seed, a distilled set of the (pruned) real data (`DistilledJob`, seed s) and evaluates it with a
student run that trains the experiment's `student` networks on it (`StudentJob.distilled`, seed s).

Paths carry the axes, relative to results/<preset>/<dataset slug>/:
  teachers/<arch>-<recipe>[-f<keep>]-s<seed>/
  scores/<method>[-<teacher key>]-s<seed>.npz
  students/<arch>-<recipe>/<selection>/keep<f>/<loss>[-<teacher key>-<param><value>...]/s<seed>/
  distilled/<method>-ipc<n>[-ite<beta>]/<selection>/keep<f>/s<seed>/
  students/<arch>-eval/<selection>/keep<f>/ce-<method>-ipc<n>[-ite<beta>]/s<seed>/   (its evaluation)
(a chained replicate's teacher key ends in `-chain`, not `-s<seed>`: seed s reads teacher s)
Deduplication is by path: a run that two experiments share (or keep 1.0 under every method) is one
run."""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from kdprune.data import augmentation_of, dataset_slug, in_memory, label_noise_of
from kdprune.losses import LOSSES
from kdprune.plan.config import KD_TEACHER, loss_parameters, omitted_parameters, reads_kd_teacher, teachers_of
from kdprune.pruning import RULES

FULL = "full"  # the selection of a keep-1.0 run: the whole training set, whatever the method
RESHAPE_STATS = "teacher_ce"  # the score whose file holds a teacher's k_y (KD's `reshape`)
DS_SCORE = "ds_influence"  # the score whose highest share of a run's subset the teacher supervises (`supervise`)
EVAL_RECIPE = "eval"  # the recipe name of a distilled set's evaluation runs (settings: config `distill.evaluation`)


@dataclass(frozen=True)
class TeacherJob:
    dataset: str
    arch: str
    recipe: str
    seed: int
    keep: float = 1.0  # fraction of the training set the teacher sees (random, class-balanced)
    # Whether it also stores its logits of every training view (`teacher_views`; decided for the
    # whole grid by `_view_tables`); not part of its identity or its path.
    views: bool = field(default=False, compare=False)

    @property
    def setting(self) -> str:
        """The key without the seed: what the teachers of a chained replicate's seeds share."""
        part = f"-f{self.keep:g}" if self.keep < 1.0 else ""
        return f"{self.arch}-{self.recipe}{part}"

    @property
    def key(self) -> str:
        return f"{self.setting}-s{self.seed}"

    @property
    def dir(self) -> str:
        return f"{dataset_slug(self.dataset)}/teachers/{self.key}"


@dataclass(frozen=True)
class ScoreJob:
    dataset: str
    method: str
    seed: int
    teacher: TeacherJob | None = None  # a score computed from a trained teacher

    @property
    def key(self) -> str:
        part = f"-{self.teacher.key}" if self.teacher else ""
        return f"{self.method}{part}-s{self.seed}"

    @property
    def path(self) -> str:
        return f"{dataset_slug(self.dataset)}/scores/{self.key}.npz"


@dataclass(frozen=True)
class DistilledJob:
    """A distilled set (P4): `ipc` synthetic images per class learned by `method` from the real
    training images its selection keeps, with BiLP's causal-effect pruning at `ite` (beta per tail; 0: off)."""

    dataset: str
    method: str
    ipc: int
    selection_method: str  # FULL when keep == 1
    selection_rule: str | None
    keep: float
    seed: int
    ite: float = 0.0
    ite_tails: str = "both"  # which ends of the causal effects are dropped: both, small or large
    score: ScoreJob | None = None

    @property
    def setting(self) -> str:
        ite = (f"-ite{self.ite:g}" + ("" if self.ite_tails == "both" else f"-{self.ite_tails}")) if self.ite else ""
        return f"{self.method}-ipc{self.ipc}{ite}"

    @property
    def key(self) -> str:
        return f"{self.setting}/{_selection_name(self.selection_method, self.selection_rule)}/keep{self.keep:g}/s{self.seed}"

    @property
    def dir(self) -> str:
        return f"{dataset_slug(self.dataset)}/distilled/{self.key}"

    @property
    def group_dir(self) -> str:
        """The set folder's parent: every seed of this grid point (one job under `stack_seeds`)."""
        return self.dir.rpartition("/")[0]


def _selection_name(method: str, rule: str | None) -> str:
    # Rule parameters (class balance, medium window centre ...) are global `selection:`
    # settings: recorded in each run's spec, and a change reruns the runs, not new paths.
    if rule in (None, method):  # full, random, a dynamic method, or a method named after its rule
        return method
    return f"{method}-{rule}"


@dataclass(frozen=True)
class StudentJob:
    dataset: str
    arch: str
    recipe: str
    selection_method: str  # FULL when keep == 1
    selection_rule: str | None  # None for full and random subsets
    keep: float
    loss: str
    seed: int
    loss_params: tuple[tuple[str, float], ...] = ()
    teacher: TeacherJob | None = None
    score: ScoreJob | None = None  # the score the subset is selected by (None: the full data)
    cutoff: ScoreJob | None = None  # the score a rule with a cutoff (ccs) drops by, when it is not `score`
    class_scale: ScoreJob | None = None  # KD with `reshape`: the teacher_ce score file holding k_y
    supervision: ScoreJob | None = None  # a loss with `supervise` < 1: the ds_influence score of its teacher
    chained: bool = False  # replicate `chain`: the teacher has the run's seed (the path says `-chain`)
    distilled: DistilledJob | None = None  # the evaluation of a distilled set (its seed is the run's)

    @property
    def score_jobs(self) -> list[ScoreJob]:
        """Every score file the run reads: its selection's, a cutoff's, k_y's, data selection's, or
        its distilled set's selection's."""
        distilled = self.distilled.score if self.distilled else None
        return [job for job in (self.score, self.cutoff, self.class_scale, self.supervision, distilled) if job is not None]

    @property
    def selection(self) -> str:
        return _selection_name(self.selection_method, self.selection_rule)

    @property
    def loss_key(self) -> str:
        keys = dict(loss_parameters(self.loss))
        # A chained run's teacher seed is its own seed: the seeds of its grid point share one folder.
        teacher = [f"{self.teacher.setting}-chain" if self.chained else self.teacher.key] if self.teacher else []
        distilled = [self.distilled.setting] if self.distilled else []
        parts = [self.loss, *teacher, *distilled, *(f"{keys[k]}{v:g}" for k, v in self.loss_params)]
        return "-".join(parts)

    @property
    def key(self) -> str:
        return f"{self.arch}-{self.recipe}/{self.selection}/keep{self.keep:g}/{self.loss_key}/s{self.seed}"

    @property
    def dir(self) -> str:
        return f"{dataset_slug(self.dataset)}/students/{self.key}"

    @property
    def group_dir(self) -> str:
        """The run folder's parent: every seed of this grid point (one job under `stack_seeds`)."""
        return self.dir.rpartition("/")[0]

    def axes(self) -> dict:
        """The run's coordinates, as columns of the runs table."""
        t, d = self.teacher, self.distilled
        score = d.score if d else self.score
        return {
            "dataset": dataset_slug(self.dataset),
            "arch": self.arch,
            "recipe": self.recipe,
            "selection": self.selection,
            "selection_method": self.selection_method,
            "selection_rule": self.selection_rule,
            "score": score.method if score else None,
            "keep": self.keep,
            "loss": self.loss,
            **dict(self.loss_params),
            "seed": self.seed,
            "teacher": t.arch if t else None,
            "teacher_seed": t.seed if t else None,
            "teacher_recipe": t.recipe if t else None,
            "teacher_keep": t.keep if t else None,
            "label_noise": label_noise_of(self.dataset),
            **({"distill": d.method, "ipc": d.ipc, "ite": d.ite, "ite_tails": d.ite_tails} if d else {}),
        }


def _loss_variants(loss: str, params: dict) -> Iterator[tuple[str, tuple[tuple[str, float], ...]]]:
    """(loss, its parameter values) for every point of the loss's own grid; a point where the loss
    is another one (`same_as`: KD at alpha 0 is CE) becomes that loss, without parameters."""
    names = [name for name, _ in loss_parameters(loss)]
    omit = omitted_parameters(loss)
    same_as = LOSSES.meta(loss).get("same_as")
    for values in itertools.product(*(params[name] for name in names)):
        point = tuple((name, float(v)) for name, v in zip(names, values) if omit.get(name) != float(v))
        if same_as and all(dict(point)[k] == v for k, v in same_as["when"].items()):
            yield same_as["loss"], ()
        else:
            yield loss, point


def _score_job(cfg: dict, dataset: str, method: str, seed: int, kd_teacher: TeacherJob | None = None) -> ScoreJob:
    """The score a method reads. A score whose settings name a `teacher` architecture reads that
    teacher (teacher_recipe, full data, seed 0); `teacher: kd_teacher` reads the student's own KD
    teacher (MDSLR: the difficulty is the distilling teacher's), one score per teacher and seed."""
    settings = cfg["scores"][method]
    score = settings.get("score", method)  # an alias (`ccs: {score: aum}`) reads another method's scores
    scored_by = cfg["scores"].get(score, {}).get("teacher")
    if scored_by == KD_TEACHER:
        per_teacher = cfg["scores"][score].get("score_seed") == "teacher"  # MDSLR: one subset per teacher
        return ScoreJob(dataset, score, kd_teacher.seed if per_teacher else seed, kd_teacher)
    teacher = TeacherJob(dataset, scored_by, cfg["teacher_recipe"], 0) if scored_by else None
    fixed = cfg["scores"].get(score, {}).get("score_seed") == "fixed"  # one file for every seed (BiLP's released scores)
    return ScoreJob(dataset, score, 0 if fixed else seed, teacher)


def _distill_variants(distill: dict) -> Iterator[tuple[str, int, float, str]]:
    """(method, ipc, ite beta, ite tails) of every point of a distillation experiment's `distill`
    mapping; without the causal-effect criterion (ite 0) the tails are moot: one point."""
    seen = set()
    for method, axes in distill.items():
        for ipc, ite, tails in itertools.product(axes["ipc"], axes["ite"], axes["ite_tails"]):
            point = (method, int(ipc), float(ite), tails if ite else "both")
            if point not in seen:
                seen.add(point)
                yield point


def _students(cfg: dict, exp: dict, seeds: list[int]) -> Iterator[StudentJob]:
    axes = itertools.product(
        exp["dataset"],
        exp["label_noise"],
        exp["student"],
        exp["recipe"],
        exp["selection"],
        exp["selection_rule"],
        exp["keep"],
        exp["loss"].items(),
        seeds,
    )
    for dataset, noise, arch, recipe, method, rule, keep, (loss_name, params), seed in axes:
        dataset = f"{dataset}+noise{noise:g}" if noise > 0 else dataset
        settings = cfg["scores"][method]
        # A dynamic method (InfoBatch) prunes inside training and sees the whole training set: one
        # run at keep 1.0 whatever the keep list, with no score file, and not the `full` run; with
        # `cost: keep` one run per keep, which is then its share of full-data sample-steps.
        dynamic = "dynamic" in settings
        keep = 1.0 if dynamic and "cost" not in settings["dynamic"] else keep
        full = keep >= 1.0 and not dynamic
        # A method whose settings name a rule always uses it (moderate coreset: medium band).
        rule = None if full or dynamic or method == "random" else settings.get("rule", rule)
        score = None if full or dynamic or reads_kd_teacher(cfg, method) else _score_job(cfg, dataset, method, seed)  # else: per teacher, below
        cutoff = _score_job(cfg, dataset, settings["cutoff_score"], seed) if rule and RULES.meta(rule).get("needs_cutoff") else None
        base = dict(
            dataset=dataset,
            arch=arch,
            recipe=recipe,
            keep=float(keep),
            seed=seed,
            selection_method=FULL if full else method,
            selection_rule=rule,
            score=score,
            cutoff=cutoff if cutoff != score else None,  # one file when the rule cuts by the score it selects by
        )
        if exp.get("distill"):  # P4: the run evaluates a distilled set of the selection's data (same seed)
            evaluation = {**base, "recipe": EVAL_RECIPE, "score": None, "cutoff": None}
            for (loss, point), (distiller, ipc, ite, tails) in itertools.product(
                _loss_variants(loss_name, params), _distill_variants(exp["distill"])
            ):
                distilled = DistilledJob(dataset, distiller, ipc, base["selection_method"], rule, float(keep), seed, ite, tails, score)
                yield StudentJob(**evaluation, loss=loss, loss_params=point, distilled=distilled)
            continue
        for loss, point in _loss_variants(loss_name, params):
            if not LOSSES.meta(loss)["needs_teacher"]:
                yield StudentJob(**base, loss=loss, loss_params=point)
                continue
            chained = exp["replicate"] == "chain"
            teacher_seeds = [seed] if chained else exp["teacher_seed"]  # chain: replicate s trains teacher s
            for t_arch, t_seed, t_keep in itertools.product(teachers_of(exp, arch), teacher_seeds, exp["teacher_keep"]):
                teacher = TeacherJob(dataset, t_arch, exp["teacher_recipe"], t_seed, float(t_keep))
                scored = {} if full or dynamic or not reads_kd_teacher(cfg, method) else {"score": _score_job(cfg, dataset, method, seed, teacher)}
                if dict(point).get("reshape"):  # k_y of the same teacher (its teacher_ce score file)
                    scored["class_scale"] = _score_job(cfg, dataset, RESHAPE_STATS, seed, teacher)
                if dict(point).get("supervise", 1.0) < 1.0:  # data selection by the same teacher's score
                    scored["supervision"] = _score_job(cfg, dataset, DS_SCORE, seed, teacher)
                yield StudentJob(**{**base, **scored}, loss=loss, loss_params=point, teacher=teacher, chained=chained)


def _view_tables(cfg: dict, students: Iterator[StudentJob]) -> set[TeacherJob]:
    """The teachers that store a view table (kdprune.train.views), by `teacher_views`: true, every
    teacher of a KD student on an in-memory dataset; auto, those of them whose KD students, every
    seed a round may add included, together train on at least as many images as the table holds
    (sum of epochs x keep >= views per image). Below that the table's inference (one teacher pass
    per view and image) costs more than the teacher passes it saves (one per student image)."""
    mode = cfg["teacher_views"]
    if not mode:
        return set()
    passes: Counter = Counter()
    for s in students:
        if s.teacher is not None and in_memory(s.dataset):
            passes[s.teacher] += cfg["recipes"][s.recipe]["epochs"] * s.keep
    if mode is True:
        return set(passes)
    return {t for t, n in passes.items() if n >= augmentation_of(t.dataset, cfg["augmentation"]).views}


def _with_views(student: StudentJob, tabled: set[TeacherJob]) -> StudentJob:
    if student.teacher is None or student.teacher not in tabled:
        return student
    return replace(student, teacher=replace(student.teacher, views=True))


def dedupe(jobs) -> list:
    return list(dict.fromkeys(jobs))


@dataclass
class Grid:
    """The grid's jobs; each derived list is computed once (the Snakefile asks for them per rule)."""

    experiments: dict[str, list[StudentJob]]  # the first round: every experiment's `seed` list
    replicates: dict[str, list[StudentJob]]  # the seeds adaptive replicates may add (`replicate_seeds`), one run each

    @classmethod
    def from_config(cls, cfg: dict) -> Grid:
        exps = cfg["experiments"].items()
        first = {name: dedupe(_students(cfg, exp, exp["seed"])) for name, exp in exps}
        later = {name: dedupe(_students(cfg, exp, exp["replicate_seeds"])) for name, exp in exps}
        tabled = _view_tables(cfg, itertools.chain(*first.values(), *later.values()))
        if tabled:
            first, later = ({name: [_with_views(s, tabled) for s in jobs] for name, jobs in lists.items()} for lists in (first, later))
        return cls(first, later)

    @functools.cached_property
    def students(self) -> list[StudentJob]:
        return dedupe(itertools.chain.from_iterable(self.experiments.values()))

    @functools.cached_property
    def replicate_students(self) -> list[StudentJob]:
        first = set(self.students)
        return [s for s in dedupe(itertools.chain.from_iterable(self.replicates.values())) if s not in first]

    @functools.cached_property
    def scores(self) -> list[ScoreJob]:
        return _scores_of(self.students)

    @functools.cached_property
    def teachers(self) -> list[TeacherJob]:
        return _teachers_of(self.students)

    @functools.cached_property
    def every_score(self) -> list[ScoreJob]:
        """The scores of the first round and of every seed a later round may add (by key: each is
        trained only when a job asks for it)."""
        return _scores_of([*self.students, *self.replicate_students])

    @functools.cached_property
    def every_teacher(self) -> list[TeacherJob]:
        return _teachers_of([*self.students, *self.replicate_students])

    @functools.cached_property
    def distilled(self) -> list[DistilledJob]:
        """The distilled sets the first round evaluates."""
        return dedupe(s.distilled for s in self.students if s.distilled is not None)

    @functools.cached_property
    def replicate_distilled(self) -> list[DistilledJob]:
        """The distilled sets only a later round's seeds evaluate (made when a round asks for them)."""
        first = set(self.distilled)
        return [d for d in dedupe(s.distilled for s in self.replicate_students if s.distilled is not None) if d not in first]


def _scores_of(students: list[StudentJob]) -> list[ScoreJob]:
    return dedupe(job for s in students for job in s.score_jobs)


def _teachers_of(students: list[StudentJob]) -> list[TeacherJob]:
    upstream = [s.teacher for s in students] + [s.teacher for s in _scores_of(students)]
    return dedupe(t for t in upstream if t is not None)
