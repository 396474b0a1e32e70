# Config -> validated settings -> the grid of jobs. Everything below is plain Python from the
# kdprune package; the rules only map paths to jobs.
import json
import os
import re
import shlex

from snakemake.utils import validate

from kdprune.config import ConfigError, resolve
from kdprune.data import in_memory
from kdprune.grid import Grid
from kdprune.jobs import score_spec, student_spec, teacher_spec
from kdprune.report.claims import claim_spec

try:
    # --config key=value pairs win over the chosen preset (they are already merged into `config`,
    # but the preset is merged after them).
    CFG = resolve(config, workflow.config_settings.config)
except ConfigError as err:
    raise SystemExit(f"kdprune: {err}")
validate(CFG, "../schemas/config.schema.yaml")  # the same schema, as Snakemake's own check

SCALE = CFG["scale"]
RESULTS = f"results/{SCALE}"
GRID = Grid.from_config(CFG)
TEACHERS = {t.dir: t for t in GRID.teachers}
SCORE_JOBS = {s.path: s for s in GRID.scores}
STUDENTS = {s.dir: s for s in GRID.students}
# `stack_seeds` (not `off`): one job per cell trains all its seeds (kdprune.jobs.run_seeds). A
# rule's outputs are fixed, so cells are grouped by their seed list: one rule per list.
STACK_SEEDS = CFG.get("stack_seeds", "auto")
CELLS = GRID.cells
SEED_SETS = {}
for _cell, _jobs in CELLS.items():
    SEED_SETS.setdefault(tuple(j.seed for j in _jobs), []).append(_cell)
CLAIM_PATHS = [f"{c['paper']}/{cid}" for cid, c in CFG["claims"].items()]
FIGURE_PATHS = [f"{c['paper']}/{cid}" for cid, c in CFG["claims"].items() if "figure" in c]
LEDGER = [f"paper_figures/claims.{ext}" for ext in ("md", "csv", "json")]


wildcard_constraints:
    dataset=r"[^/]+",
    key=r"[^/]+",
    experiment=r"[^/]+",
    paper=r"[^/]+",
    claim=r"[^/]+",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def run_dir(output_path):
    return os.path.dirname(output_path)


def student_job(wildcards):
    return STUDENTS[f"{wildcards.dataset}/students/{wildcards.run}"]


def has_views(teacher_job):
    """Whether the teacher also stores its logits of every training view (kdprune/teacher_views.py)."""
    return CFG.get("teacher_views", False) and in_memory(teacher_job.dataset)


def jobs_inputs(jobs):
    """What students (one, or the seeds of a cell: one teacher) read: teacher or its views, scores."""
    inputs = {}
    teacher = jobs[0].teacher
    if teacher is not None:
        kind, name = ("teacher_views", "views.pt") if has_views(teacher) else ("teacher", "model.pt")
        inputs[kind] = f"{RESULTS}/{teacher.dir}/{name}"
    if jobs[0].score is not None:
        inputs["scores"] = [f"{RESULTS}/{job.score.path}" for job in jobs]
    return inputs


def student_inputs(wildcards):
    return jobs_inputs([student_job(wildcards)])


def cell_inputs(wildcards):
    return jobs_inputs(CELLS[wildcards.cell])


def student_args(wildcards, input):
    def paths(value):  # one file (a str) or several (a list: one score file per seed)
        return [value] if isinstance(value, str) else list(value)

    return " ".join(f"--{name.replace('_', '-')} {shlex.join(paths(input[name]))}" for name in input.keys())


def seed_rule_name(seeds):
    """The rule of the most common seed list is `student` (profiles set its resources); others
    are `student_seeds_<seeds>`."""
    most = max(SEED_SETS, key=lambda k: len(SEED_SETS[k]))
    return "student" if seeds == most else "student_seeds_" + "_".join(map(str, seeds))


def cell_pattern(seeds):
    """The `cell` wildcard of a seed list's rule: any cell when there is one list, else its own cells."""
    if len(SEED_SETS) == 1:
        return r"[^/]+/students/.+"
    return "|".join(re.escape(cell) for cell in SEED_SETS[seeds])


def experiment_metrics(experiment):
    return [f"{RESULTS}/{job.dir}/metrics.json" for job in GRID.experiments[experiment]]


def paper_job_files():
    """{paper: the metadata file of every job its experiments need}, for the compute summary."""
    out = {}
    for name, students in GRID.experiments.items():
        files = out.setdefault(CFG["experiments"][name].get("paper", "?"), [])
        for s in students:
            files.append(f"{RESULTS}/{s.dir}/metrics.json")
            if s.teacher is not None:
                files.append(f"{RESULTS}/{s.teacher.dir}/metrics.json")
                if has_views(s.teacher):
                    files.append(f"{RESULTS}/{s.teacher.dir}/views.json")
            if s.score is not None:
                files.append(f"{RESULTS}/{s.score.path[:-len('.npz')]}.json")
    return {paper: list(dict.fromkeys(files)) for paper, files in out.items()}


PAPER_JOB_FILES = paper_job_files()


def claim_runs(wildcards):
    return f"{RESULTS}/runs/{CFG['claims'][wildcards.claim]['experiment']}.csv"
