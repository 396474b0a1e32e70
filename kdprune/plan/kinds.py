"""Job kinds: what each kind of compute job is, as the planning layer sees it. A kind says which jobs
of the grid it runs (by key), the spec each job gets (everything it needs, nothing it does not: a
changed spec reruns the job), the files it reads from its upstream jobs and the files it writes,
relative to results/<preset>/; its runner (`kdprune.jobs.runners`) does the work. Each kind has one
rule in workflow/rules/, all of the same shape:
`python -m kdprune run <kind> --plan results/<preset>/plan.json --key <key> --settings <hash>`.

Adding a kind: a `JobKind` here, a runner, a rule; a job that reads its output links to it like a
student links to its teacher (P4's `distilled` sets: their evaluation runs are students that read
them, `StudentJob.distilled`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from kdprune.data import augmentation_of, dataset_slug
from kdprune.distill import CONVNET_DEPTH, CONVNET_WIDTH, DISTILLERS, DSA_STRATEGY
from kdprune.plan.grid import FULL, DistilledJob, Grid, ScoreJob, StudentJob, TeacherJob, dedupe
from kdprune.registry import Registry


def settings_hash(settings: dict | list) -> str:
    """Stable 12-hex hash of JSON-able settings (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# -- specs ----------------------------------------------------------------------------------------


def _common(cfg: dict, dataset: str) -> dict:
    # The dataset's training views (crop padding, flip, padding mode): a change reruns every job on it.
    augmentation = augmentation_of(dataset, cfg["augmentation"])
    return {
        "dataset": dataset,
        "data_root": cfg["data_root"],
        "download": cfg["download"],
        "device": cfg["device"],
        "accel": cfg["accel"],
        "augmentation": augmentation and asdict(augmentation),
    }


def recipe_for(cfg: dict, name: str, arch: str) -> dict:
    """A recipe as one architecture trains it: `lr_by_arch` (e.g. MDSLR's lr 0.01 for MobileNetV2 and
    the ShuffleNets) replaces `lr` for the architectures it names and is not part of the spec."""
    recipe = dict(cfg["recipes"][name])
    by_arch = recipe.pop("lr_by_arch", {})
    if arch in by_arch:
        recipe["lr"] = by_arch[arch]
    return recipe


def teacher_checkpoint(cfg: dict, job: TeacherJob) -> str | None:
    """`teacher_checkpoints.<dataset>.<arch>`: a file (teacher seed 0) or a list (one per teacher
    seed) of an existing full-data teacher to import instead of training it."""
    given = cfg["teacher_checkpoints"].get(job.dataset, {}).get(job.arch)
    files = [given] if isinstance(given, str) else list(given or [])
    return files[job.seed] if job.keep >= 1.0 and job.seed < len(files) else None


def teacher_spec(cfg: dict, job: TeacherJob) -> dict:
    subset = (
        {"keep": 1.0, "selection_method": FULL}
        if job.keep >= 1.0
        else {"keep": job.keep, "selection_method": "random", "selection_rule": None, "selection": cfg["selection"]}
    )
    axes = {"role": "teacher", "dataset": dataset_slug(job.dataset), "arch": job.arch, "recipe": job.recipe, "seed": job.seed, "keep": job.keep}
    checkpoint = teacher_checkpoint(cfg, job)
    return {
        **({"checkpoint": checkpoint} if checkpoint else {}),  # only then: other teachers' specs stay as they were
        **_common(cfg, job.dataset),
        "role": "teacher",
        "arch": job.arch,
        "recipe": recipe_for(cfg, job.recipe, job.arch),
        "loss": "ce",
        "loss_params": {},
        "seed": job.seed,
        **subset,
        "axes": axes,
    }


def score_spec(cfg: dict, job: ScoreJob) -> dict:
    settings = dict(cfg["scores"][job.method])
    if "recipe" in settings:
        settings["recipe"] = recipe_for(cfg, settings["recipe"], settings.get("arch"))
    upstream = {"teacher_spec": teacher_spec(cfg, job.teacher)} if job.teacher else {}
    return {**_common(cfg, job.dataset), "role": "score", "method": job.method, "seed": job.seed, "settings": settings, **upstream}


def _student_recipe(cfg: dict, job: StudentJob) -> dict:
    """The student's recipe; a dynamic method (`scores.<m>.dynamic`, InfoBatch) prunes inside it
    (the recipe's `infobatch`, kdprune.train.infobatch), the other runs' recipes stay as they were."""
    recipe = recipe_for(cfg, job.recipe, job.arch)
    dynamic = cfg["scores"].get(job.selection_method, {}).get("dynamic")
    if dynamic:
        recipe["infobatch"] = {k: v for k, v in dynamic.items() if k not in ("kind", "cost")}
        if dynamic.get("cost") == "keep":  # the grid point's keep is its share of full-data sample-steps
            recipe["infobatch"]["cost_share"] = job.keep
    return recipe


def distilled_spec(cfg: dict, job: DistilledJob) -> dict:
    """A distilled set's spec: the method's settings (config `distill.<method>`), the causal-effect
    pruning's (`distill.ite`, only when on: the other sets' specs stay as they were), the selection
    of the real data it distils and the score spec that selection reads."""
    ite = {"beta": job.ite, "tails": job.ite_tails, **cfg["distill"]["ite"]} if job.ite else None
    return {
        **_common(cfg, job.dataset),
        "role": "distilled",
        "method": job.method,
        "ipc": job.ipc,
        "settings": dict(cfg["distill"][job.method]),
        "ite": ite,
        "selection_method": job.selection_method,
        "selection_rule": job.selection_rule,
        "keep": job.keep,
        "selection": cfg["selection"] if job.score else None,
        "seed": job.seed,
        "score_spec": job.score and score_spec(cfg, job.score),
    }


def evaluation_recipe(cfg: dict, job: DistilledJob) -> dict:
    """How a distilled set is evaluated (config `distill.evaluation`): with DSA and `epochs_dsa`
    epochs when its method distilled with DSA, as DC/DM's evaluation does (`epoch_eval_train`)."""
    settings = dict(cfg["distill"]["evaluation"])
    method = cfg["distill"][job.method]
    dsa = method.get("dsa", DISTILLERS.meta(job.method)["dsa"])
    epochs_dsa = settings.pop("epochs_dsa")
    augment = method.get("dsa_strategy", DSA_STRATEGY) if dsa else None
    # the network the set was distilled with (the original evaluates its own `model`)
    network = {"width": method.get("net_width", CONVNET_WIDTH), "depth": method.get("net_depth", CONVNET_DEPTH)}
    return {**settings, **network, "epochs": epochs_dsa if dsa else settings["epochs"], "augment": augment}


def student_spec(cfg: dict, job: StudentJob) -> dict:
    # The specs of the teacher and the score it depends on make the run self-describing.
    upstream = {"teacher_spec": job.teacher and teacher_spec(cfg, job.teacher), "score_spec": job.score and score_spec(cfg, job.score)}
    if job.cutoff:  # only then, so that the specs (and hashes) of the other runs stay as they were
        upstream["cutoff_spec"] = score_spec(cfg, job.cutoff)
    if job.class_scale:
        upstream["class_scale_spec"] = score_spec(cfg, job.class_scale)
    if job.supervision:
        upstream["supervision_spec"] = score_spec(cfg, job.supervision)
    if job.distilled:
        upstream = {"distilled_spec": distilled_spec(cfg, job.distilled)}
    return {
        **_common(cfg, job.dataset),
        "role": "student",
        "arch": job.arch,
        "recipe": evaluation_recipe(cfg, job.distilled) if job.distilled else _student_recipe(cfg, job),
        "selection_method": job.selection_method,
        "selection_rule": job.selection_rule,
        "keep": job.keep,
        "selection": cfg["selection"] if job.score else None,
        "loss": job.loss,
        "loss_params": dict(job.loss_params),
        "seed": job.seed,
        **upstream,
        "axes": {"role": "student", **job.axes()},
    }


# -- kinds ----------------------------------------------------------------------------------------


def teacher_files(teachers: list[TeacherJob]) -> dict[str, str | list[str]]:
    """What a job that reads teachers needs of them: their view tables when every one has one, else
    their models; one path for one teacher, a list (one per seed) for a chained grid point's."""
    name, file = ("teacher_views", "views.pt") if all(t.views for t in teachers) else ("teacher", "model.pt")
    paths = [f"{t.dir}/{file}" for t in teachers]
    return {name: paths[0] if len(paths) == 1 else paths}


@dataclass(frozen=True)
class JobKind:
    name: str
    jobs: Callable[[dict, Grid], dict[str, object]]  # key -> job (a student job: the list of its seeds' runs)
    spec: Callable[[dict, object], dict | list]
    inputs: Callable[[dict, object], dict[str, str | list[str]]]  # name -> path(s) under results/<preset>/
    outputs: Callable[[dict, object], dict[str, str]]
    runner: str  # "module:function" of kdprune.jobs.runners


def _student_inputs(cfg: dict, group: list[StudentJob]) -> dict:
    first = group[0]
    inputs = teacher_files(dedupe(job.teacher for job in group)) if first.teacher else {}  # chained: one per seed
    if first.score is not None:
        inputs["scores"] = [job.score.path for job in group]
    if first.cutoff is not None:
        inputs["cutoff_scores"] = [job.cutoff.path for job in group]
    if first.class_scale is not None:
        inputs["class_scale"] = [job.class_scale.path for job in group]
    if first.supervision is not None:
        inputs["supervision"] = [job.supervision.path for job in group]
    if first.distilled is not None:  # seed s evaluates distilled set s
        inputs["distilled"] = [f"{job.distilled.dir}/{SYNTHETIC}" for job in group]
    return inputs


def _student_outputs(cfg: dict, group: list[StudentJob]) -> dict:
    """Each run's folder (`run_s<seed>`: its model.pt and metrics.json) and the one file Snakemake
    tracks (`DONE`): a seed group's record, runs-s<seeds>.json beside its runs, written once all of
    them are; a job of one run (`stack_seeds: off`, a seed an adaptive round adds) its metrics.json.
    One tracked file per job, not two per run: a paper dry run is an eighth faster."""
    runs = {f"run_s{job.seed}": job.dir for job in group}
    if cfg["stack_seeds"] == "off" or group[0].seed in replicate_seeds(cfg):
        return {DONE: f"{group[0].dir}/metrics.json", **runs}
    seeds = "-".join(str(job.seed) for job in group)
    return {DONE: f"{group[0].group_dir}/runs-s{seeds}.json", **runs}


DONE = "done"  # the output of a job kind that Snakemake tracks, when it writes more than it declares


def replicate_seeds(cfg: dict) -> set[int]:
    """Seeds only adaptive-replicate rounds train (disjoint from every first round's, kdprune.plan.config)."""
    return {seed for exp in cfg["experiments"].values() for seed in exp["replicate_seeds"]}


JOB_KINDS: Registry = Registry("job kind")
JOB_KINDS.register("teacher")(
    JobKind(
        name="teacher",
        jobs=lambda cfg, grid: {t.dir: t for t in grid.every_teacher},
        spec=teacher_spec,
        inputs=lambda cfg, t: {},
        outputs=lambda cfg, t: {"model": f"{t.dir}/model.pt", "metrics": f"{t.dir}/metrics.json"},
        runner="kdprune.jobs.runners:run_teacher",
    )
)
JOB_KINDS.register("teacher_views")(
    JobKind(
        name="teacher_views",
        jobs=lambda cfg, grid: {t.dir: t for t in grid.every_teacher if t.views},
        spec=teacher_spec,
        inputs=lambda cfg, t: {"model": f"{t.dir}/model.pt"},
        outputs=lambda cfg, t: {"views": f"{t.dir}/views.pt", "meta": f"{t.dir}/views.json"},
        runner="kdprune.jobs.runners:run_views",
    )
)
SYNTHETIC = "synthetic.pt"  # a distilled set's images and labels (beside it: distilled.json, its metadata)


def _distilled_jobs(cfg: dict, grid: Grid) -> dict[str, list[DistilledJob]]:
    """As students: the seeds of a grid point's sets in one job (one start-up, one dataset load),
    keyed by their parent folder; with `stack_seeds: off`, and for a set only a later round's seed
    evaluates, one job per set, keyed by its folder."""
    first: dict[str, list[DistilledJob]] = {}
    for d in grid.distilled:
        first.setdefault(d.dir if cfg["stack_seeds"] == "off" else d.group_dir, []).append(d)
    return {key: sorted(group, key=lambda d: d.seed) for key, group in first.items()} | {d.dir: [d] for d in grid.replicate_distilled}


def _distilled_outputs(cfg: dict, group: list[DistilledJob]) -> dict[str, str]:
    """Each seed's set (SYNTHETIC) and its metadata (distilled.json), in the set's folder."""
    return {f"{name}_s{d.seed}": f"{d.dir}/{file}" for d in group for name, file in (("synthetic", SYNTHETIC), ("meta", "distilled.json"))}


JOB_KINDS.register("distilled")(
    JobKind(
        name="distilled",
        jobs=_distilled_jobs,
        spec=lambda cfg, group: [distilled_spec(cfg, d) for d in group],
        inputs=lambda cfg, group: {"scores": [d.score.path for d in group]} if group[0].score else {},
        outputs=_distilled_outputs,
        runner="kdprune.jobs.runners:run_distilled",
    )
)
JOB_KINDS.register("score")(
    JobKind(
        name="score",
        jobs=lambda cfg, grid: {s.path: s for s in grid.every_score},
        spec=score_spec,
        inputs=lambda cfg, s: {"teacher": f"{s.teacher.dir}/model.pt"} if s.teacher else {},
        outputs=lambda cfg, s: {"scores": s.path, "meta": s.path.removesuffix(".npz") + ".json"},
        runner="kdprune.jobs.runners:run_score",
    )
)


def _student_jobs(cfg: dict, grid: Grid) -> dict[str, list[StudentJob]]:
    """The seeds of a grid point (its seed group) in one job, keyed by the group's folder; with
    `stack_seeds: off` one job per run, keyed by the run's folder. A seed an adaptive round adds
    is one job, keyed by its run folder (rounds add a few seeds to a few cells)."""
    first: dict[str, list[StudentJob]] = {}
    for s in grid.students:
        first.setdefault(student_job_key(cfg, s), []).append(s)
    return {key: sorted(group, key=lambda j: j.seed) for key, group in first.items()} | {s.dir: [s] for s in grid.replicate_students}


def student_job_key(cfg: dict, job: StudentJob) -> str:
    """The key of the job that trains a first-round run (see _student_jobs)."""
    return job.dir if cfg["stack_seeds"] == "off" else job.group_dir


JOB_KINDS.register("student")(
    JobKind(
        name="student",
        jobs=_student_jobs,
        spec=lambda cfg, group: [student_spec(cfg, j) for j in group],
        inputs=_student_inputs,
        outputs=_student_outputs,
        runner="kdprune.jobs.runners:run_students",
    )
)
