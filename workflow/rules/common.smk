# Config -> plan -> the jobs of the workflow. Everything here is kdprune.plan, which imports neither
# torch nor pandas: every job on a cluster parses this file again, so it must stay cheap.
import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import IncompleteCheckpointException

from kdprune.plan import Plan
from kdprune.plan.config import ConfigError, command_line_values, resolve

try:
    if workflow.remote_exec and Path(Plan.file_of(config.get("preset"))).is_file():
        # A job on a cluster parses this file again: it reads the plan its workflow resolved,
        # validated and wrote at the start (no YAML of the papers, no schema check).
        PLAN = Plan.read(Plan.file_of(config["preset"]))
    else:
        # --config key=value pairs win over the chosen preset and the paper files (they are
        # already merged into `config`, but the preset and the papers are merged after them).
        PLAN = Plan(resolve(config, command_line_values(workflow.config_settings.config), workflow.basedir))
except ConfigError as err:
    raise SystemExit(f"kdprune: {err}")

CFG = PLAN.cfg
RESULTS = PLAN.results
FIGURES = PLAN.figures
# A job looks itself up in the plan by kind and key: `kdprune run <kind> --plan <this> --key <key>`.
RUN = "python -m kdprune --threads {threads} run"
ON_PLAN = f"--plan {PLAN.plan_file}"
# key -> the runs of one first-round job (one seed, or a seed group); the seeds adaptive rounds add
# have their own rule (student_replicate)
REPLICATE_RUNS = {s.dir for s in PLAN.grid.replicate_students}
REPLICATE_SETS = {d.dir for d in PLAN.grid.replicate_distilled}


def seed_lists(jobs, later):
    """A rule's outputs are fixed, so seed groups are grouped by their seed list: one rule per list
    (stack_seeds: off: one list, None, whose keys are runs' own folders). `later`: the keys of the
    jobs of seeds adaptive rounds add, which have their own rule."""
    lists = {}
    for key, group in jobs.items():
        if key not in later:
            lists.setdefault(None if CFG["stack_seeds"] == "off" else tuple(job.seed for job in group), []).append(key)
    return lists


SEED_LISTS = seed_lists(PLAN.jobs("student"), REPLICATE_RUNS)
SET_SEED_LISTS = seed_lists(PLAN.jobs("distilled"), REPLICATE_SETS)  # P4's distilled sets, grouped the same way
LEDGER = [f"{FIGURES}/claims.{ext}" for ext in ("md", "csv", "json")]
DISTILLED_FIGURES = PLAN.distilled_figures()  # P4: figure -> the distilled sets it shows
# Seeds that only adaptive-replicate rounds train (kdprune.plan.config: disjoint from first rounds)
REPLICATE_SEEDS = sorted({s for exp in CFG["experiments"].values() for s in exp["replicate_seeds"]})


onstart:
    PLAN.write()  # the resolved config every job reads; a dry run writes nothing


wildcard_constraints:
    dataset=r"[^/]+",
    key=r"[^/]+",
    experiment=r"[^/]+",
    paper=r"[^/]+",
    claim=r"[^/]+",
    round=r"[0-9]+",


def inputs_of(kind, key_of):
    """The rule's inputs: the files the job reads from its upstream jobs (kdprune.plan.kinds)."""
    return lambda w: PLAN.inputs(kind, key_of(w))


def settings_of(kind, key_of):
    """The job's settings hash, as a param: Snakemake reruns a job whose settings changed."""
    return lambda w: PLAN.settings(kind, key_of(w))


def teacher_key(w):
    return f"{w.dataset}/teachers/{w.key}"


def score_key(w):
    return f"{w.dataset}/scores/{w.key}.npz"


def seed_rule_name(seeds, kind="student", lists=SEED_LISTS):
    """The name of a seed list's rule: the kind's own name (`student`, whose resources profiles set)
    for the most common list, `<kind>_seeds_<seeds>` for the others."""
    most = max(lists, key=lambda k: len(lists[k]))
    return kind if seeds == most else f"{kind}_seeds_" + "_".join(map(str, seeds))


def student_log(seeds):
    return f"{RESULTS}/{{group}}/" + ("train.log" if seeds is None else f"train-s{'-'.join(map(str, seeds))}.log")


def group_pattern(seeds, kind="student", lists=SEED_LISTS, folder="students"):
    """The `group` wildcard of a seed list's rule: the other lists' rules name their few keys, and
    the kind's main rule takes every other key (a lookahead, not an alternation of hundreds of keys,
    which would cost seconds of regex compilation on every parse)."""
    if seed_rule_name(seeds, kind, lists) != kind:
        return "|".join(re.escape(group) for group in lists[seeds])
    others = [re.escape(g) for s, groups in lists.items() if s != seeds for g in groups]
    return (f"(?!(?:{'|'.join(others)})/)" if others else "") + rf"[^/]+/{folder}/.+"


def distilled_log(seeds):
    return f"{RESULTS}/{{group}}/" + ("distill.log" if seeds is None else f"distill-s{'-'.join(map(str, seeds))}.log")


def distilled_outputs(seeds):
    """The files of a distilled-set job (kdprune.plan.kinds._distilled_outputs): every seed's set
    and metadata in its own folder under the group; with no seed list, the set's folder is the key."""
    folders = ["{group}"] if seeds is None else [f"{{group}}/s{s}" for s in seeds]
    return [f"{RESULTS}/{folder}/{file}" for folder in folders for file in ("synthetic.pt", "distilled.json")]


def student_output(seeds):
    """The file Snakemake tracks of a student job (kdprune.plan.kinds._student_outputs): a seed
    group's record beside its runs, or, with no seed list (stack_seeds: off), the run's metrics."""
    if seeds is None:
        return f"{RESULTS}/{{group}}/metrics.json"
    return f"{RESULTS}/{{group}}/runs-s{'-'.join(map(str, seeds))}.json"


def claim_metrics(claim, rounds):
    """A claim's runs after `rounds` rounds of adaptive replicates: its experiment's first round
    plus the runs each round's decision (a checkpoint) added."""
    paths = PLAN.experiment_done(CFG["claims"][claim]["experiment"])
    for r in range(1, rounds + 1):
        paths += json.loads(Path(checkpoints.replicates.get(claim=claim, round=r).output[0]).read_text())["metrics"]
    return paths


def replicate_rounds(claim):
    """The claim's round decisions, up to the first that adds nothing. Snakemake evaluates each
    checkpoint before it asks for the next, so a dry run shows the first round only: say so."""
    files = []
    while not files or not json.loads(Path(files[-1]).read_text())["done"]:
        try:
            files.append(checkpoints.replicates.get(claim=claim, round=len(files) + 1).output[0])
        except IncompleteCheckpointException:
            if claim not in ANNOUNCED:
                ANNOUNCED.add(claim)
                print(
                    f"kdprune: {claim} has adaptive replicates: round {len(files) + 1} is decided from the runs so far "
                    "and may add seeds (docs/verdicts.md)",
                    file=sys.stderr,
                )
            raise
    return files


ANNOUNCED = set()


def claim_inputs(wildcards):
    """The runs table a claim is decided on, its round decisions when it has adaptive replicates,
    and the score files its `measure` compares."""
    claim = CFG["claims"][wildcards.claim]
    measured = {"measure": PLAN.claim_measure_files(wildcards.claim)}  # score files (.npz) a `measure` compares
    if not claim.get("replicates"):
        return {"runs": f"{RESULTS}/runs/{claim['experiment']}.csv", "decisions": [], **measured}
    decisions = replicate_rounds(wildcards.claim)
    return {"runs": claim_runs_after(wildcards.claim, len(decisions) - 1), "decisions": decisions, **measured}


def claim_runs_after(claim, rounds):
    """A claim's runs table after `rounds` rounds; before any, its experiment's (one file for
    every claim on the experiment)."""
    if rounds == 0:
        return f"{RESULTS}/runs/{CFG['claims'][claim]['experiment']}.csv"
    return f"{RESULTS}/runs/claims/{claim}/round{rounds}.csv"
