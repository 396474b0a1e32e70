"""The Snakemake workflow itself: dry-run job counts, lint, config errors, and the smoke preset
end to end with its outputs checked by content."""

import json
import re

import pandas as pd
import pytest
import yaml
from workflow_helpers import copy_workflow, only_p1_c1, snakemake


def job_counts(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:") :]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("stack_seeds, student_jobs", [("off", 30), ("auto", 15)])
def test_dry_run_counts_one_job_per_unique_teacher_score_and_grid_point(workflow_dir, stack_seeds, student_jobs):
    only_p1_c1(
        workflow_dir,
        {
            "student": ["resnet8"],
            "teacher": ["resnet20", "resnet14"],
            "selection": ["random", "el2n"],
            "keep": [0.3, 0.6, 1.0],
            "loss": {"ce": {}, "kd": {}},
            "seed": [0, 1],
        },
    )
    out = snakemake(workflow_dir, "-n", "all_figures", "--config", f"stack_seeds={stack_seeds}")
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout + out.stderr)
    # students: keep<1: 2 methods x 2 keeps x (1 CE + 2 teachers KD) x 2 seeds = 24;
    #           keep=1: one full-data run x 3 losses/teachers x 2 seeds = 6
    # With stack_seeds (not off) one job trains both seeds of a grid point: 15 jobs.
    assert counts == {
        "teacher": 2,
        "teacher_views": 2,
        "score": 4,
        "student": student_jobs,
        "runs_table": 1,
        "all_runs": 1,
        "claim": 1,
        "figure": 1,
        "ledger": 1,
        "compute": 1,
        "all_figures": 1,
        "total": 15 + student_jobs,
    }


def test_seed_groups_with_other_seed_lists_get_their_own_rule(workflow_dir):
    """An experiment with its own `seed` list: its cells go to rule student_seeds_<list>, the
    others to `student`, and no output is claimed by two rules."""
    only_p1_c1(
        workflow_dir,
        {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3, 1.0], "loss": {"ce": {}}, "seed": [0, 1, 2]},
        extra={
            "p1_alpha": {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3], "loss": {"kd": {}}, "seed": [0, 1]}
        },
    )
    out = snakemake(workflow_dir, "-n", "all_figures")
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout + out.stderr)
    assert counts["student"] == 2 and counts["student_seeds_0_1"] == 1


# Expected jobs of each claim's table in the shipped smoke preset, counted by hand (3 seeds):
#  p1_kd_vs_ce: 6 methods x 2 keeps x {CE, KD} + full x {CE, KD} = 26 per seed -> 78 students;
#               1 teacher (resnet8); scores: 6 (ccs reads aum) x 3 seeds = 18
#  p1_alpha: (random, el2n at 0.2, full) x 4 alphas (alpha 0 = CE) = 12 per seed -> 36; 1 teacher; 6 scores
#  p1_label_noise: 2 methods x 2 alphas = 4 per seed -> 12; 1 teacher on the noisy labels; 6 scores
#  p1_capacity: (random 0.2, full) x 3 teachers = 6 per seed -> 18; chained replicates (its claim
#               tests a teacher property): seed s reads teacher s, 3 x 3 = 9 teachers; 3 random scores
#  p1_teacher_data: 2 teacher fractions = 2 per seed -> 6; chained: 6 teachers; 3 random scores
# Student jobs: one per grid point trains its 3 seeds (stack_seeds: auto), a chained grid point's too
# (each seed with its own teacher; its path says `-chain`, so it shares no run with p1_kd_vs_ce).
CLAIM_JOBS = {  # claim: (student jobs, teachers, score jobs)
    "P1-C1": (26, 1, 18),
    "P1-C2": (26, 1, 18),
    "P1-C3": (26, 1, 18),
    "P1-C4": (12, 1, 6),
    "P1-C5": (12, 1, 6),
    "P1-C5n": (4, 1, 6),
    "P1-C6": (6, 9, 3),
    "P1-C7": (2, 6, 3),
}


@pytest.mark.parametrize("claim", CLAIM_JOBS)
def test_dry_run_of_each_claim_table(workflow_dir, claim):
    out = snakemake(workflow_dir, "-n", f"paper_figures/smoke/P1/{claim}.md")
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout + out.stderr)
    students, teachers, scores = CLAIM_JOBS[claim]
    student_jobs = sum(n for rule, n in counts.items() if rule.startswith("student"))  # student, student_seeds_<list>
    assert (student_jobs, counts["teacher"], counts["score"]) == (students, teachers, scores)
    # a teacher stores its view logits where its students' epochs x keep reach digits' 9 views per
    # image: all but P1-C7's 20% teachers (their one student at keep 0.2 trains on 2 images per image)
    assert counts.get("teacher_views", 0) == teachers - (3 if claim == "P1-C7" else 0)
    # P1-C3 has adaptive replicates in smoke: its experiment's runs table feeds its first round's checkpoint
    tables = {"runs_table": 1, "replicates": 1} if claim == "P1-C3" else {"runs_table": 1}
    assert counts["claim"] == 1 and {k: counts.get(k) for k in tables} == tables and "ledger" not in counts
    # the tables and round decisions go before any other ready training job (report.smk)
    blocks = re.split(r"\n(?=(?:rule|checkpoint) \w+:)", out.stdout)
    priorities = {b.split(":")[0].split()[1]: re.search(r"priority: (\w+)", b) for b in blocks if b.startswith(("rule", "checkpoint"))}
    assert all(priorities[rule] and priorities[rule][1] == "10" for rule in tables)


# P2 on smoke, counted by hand: the resnet14 -> resnet8 pair, 3 seeds per job, one teacher (resnet14
# seed 0: the capacity ladder's), teacher_ce and herding once for that teacher (score_seed: teacher),
# EL2N and random once per seed. A reshaped run also reads teacher_ce (its k_y): the same file.
P2_CLAIM_JOBS = {  # claim: (student jobs, teachers, score jobs)
    "P2-C1": (12, 1, 8),  # 6 selections x keep 0.3, 0.5; scores random x3, el2n x3, herding, teacher_ce
    "P2-C1h": (12, 1, 8),  # the same experiment
    "P2-C5": (12, 1, 8),
    "P2-C2": (2, 1, 1),  # mdslr at 0.3, reshape off and on
    "P2-C3": (4, 1, 1),  # mdslr at 0.7 and InfoBatch (whole data, no score), reshape off and on
    "P2-C4a": (6, 1, 1),  # mdslr at 0.5, 0.7 and the full data, reshape off and on (full data reshaped reads k_y)
    "P2-C4b": (6, 1, 1),
}


def test_dry_run_of_p2_in_the_paper_preset(workflow_dir):
    """CIFAR-100 and ImageNet are not on this machine: the paper grid of P2 by dry run, counted by
    hand. CIFAR-100 pairs ResNet50 -> MobileNetV2, resnet32x4 -> resnet8x4, wrn_40_2 -> wrn_16_2,
    vgg13 -> vgg8: selection 4 pairs x 8 methods x 4 keeps = 128 jobs; reshaping + 16 (reshaped
    medium at 4 keeps x 4 pairs); InfoBatch + 2 (MobileNetV2, reshape off and on). ImageNet (P2-C4)
    ResNet-34 -> ResNet-18, ResNet-50 -> MobileNet: 2 pairs x (0.5, 0.7, full) x reshape = 12."""
    counts = {claim: claim_jobs(workflow_dir, claim, "preset=paper")[:2] for claim in ("P2-C1", "P2-C2", "P2-C3", "P2-C4a")}
    # P2-C1: 4 CIFAR-100 teachers; P2-C2: the 4 pairs' reshaped and plain medium runs (16 + 16);
    # P2-C3: mdslr at 0.7 and InfoBatch, reshape off and on; P2-C4a: the ImageNet pairs
    assert counts == {"P2-C1": (128, 4), "P2-C2": (32, 4), "P2-C3": (4, 1), "P2-C4a": (12, 2)}
    whole = job_counts(snakemake(workflow_dir, "-n", "all_figures", "--config", "preset=paper", "papers=[P2]").stdout)
    assert sum(n for rule, n in whole.items() if rule.startswith("student")) == 128 + 16 + 2 + 12


# P3 on smoke, counted by hand: the same resnet14 -> resnet8 pair on the whole training set, 3 seeds
# per job; one ds_influence score of the teacher (score_seed: teacher) for the runs with DS on.
P3_CLAIM_JOBS = {  # claim: (student jobs, teachers, score jobs)
    **dict.fromkeys(["P3-C1", "P3-C2a", "P3-C2b", "P3-C3a", "P3-C3b", "P3-C3c"], (8, 1, 1)),  # KD, DKD x LR x DS
    "P3-C4a": (2, 1, 0),  # eta 0.5, 0.8
    "P3-C4b": (4, 1, 0),  # alpha 0.5, 0.75 x scale 1, 2
}


DIGITS_CLASS_SIZES = (134, 137, 134, 145, 132, 137, 136, 132, 130, 130)  # the 1347 training images of digits, by class


def claim_jobs(workflow_dir, claim: str, *config: str) -> tuple[int, int, int]:
    """(student jobs, teachers, score jobs) of one claim table's dry run."""
    preset = next((c.split("=")[1] for c in config if c.startswith("preset=")), "smoke")
    out = snakemake(workflow_dir, "-n", f"paper_figures/{preset}/{claim.split('-')[0]}/{claim}.md", *(("--config", *config) if config else ()))
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout + out.stderr)
    return sum(n for rule, n in counts.items() if rule.startswith("student")), counts["teacher"], counts.get("score", 0)


@pytest.mark.parametrize("claim", [*P2_CLAIM_JOBS, *P3_CLAIM_JOBS])
def test_dry_run_of_each_p2_and_p3_claim_table(workflow_dir, claim):
    assert claim_jobs(workflow_dir, claim) == {**P2_CLAIM_JOBS, **P3_CLAIM_JOBS}[claim]


# P4 on smoke, counted by hand (digits, DC, 3 seeds per job; a distilled-set job makes a grid point's
# 3 sets, an evaluation job evaluates them): loss_converge and loss_init are one score each for
# every seed (score_seed: fixed), random one per seed.
P4_CLAIM_JOBS = {  # claim: (evaluation jobs, distilled-set jobs, score jobs)
    # full; random and largest-loss drop at keep 0.1 and 0.015 (2 images per class); scores random x3, loss_converge
    **dict.fromkeys(["P4-C1a", "P4-C1b", "P4-C2"], (5, 5, 4)),
    "P4-C3": (2, 2, 2),  # loss_init and loss_converge at keep 0.1
    **dict.fromkeys(["P4-C4a", "P4-C4b"], (4, 4, 1)),  # at keep 0.1: ite off, and 0.1 with both, small, large tails
    "P4-C5a": (4, 4, 1),  # IPC 1, 10 x (full, largest-loss drop at keep 0.5)
}


def distillation_jobs(workflow_dir, claim: str, *config: str) -> tuple[int, int, int]:
    """(evaluation jobs, distilled-set jobs, score jobs) of one P4 claim table's dry run."""
    preset = next((c.split("=")[1] for c in config if c.startswith("preset=")), "smoke")
    out = snakemake(workflow_dir, "-n", f"paper_figures/{preset}/P4/{claim}.md", *(("--config", *config) if config else ()))
    assert out.returncode == 0, out.stderr
    counts = job_counts(out.stdout + out.stderr)
    assert "teacher" not in counts
    return sum(n for rule, n in counts.items() if rule.startswith("student")), counts["distilled"], counts.get("score", 0)


@pytest.mark.parametrize("claim", P4_CLAIM_JOBS)
def test_dry_run_of_each_p4_claim_table(workflow_dir, claim):
    assert distillation_jobs(workflow_dir, claim) == P4_CLAIM_JOBS[claim]


def test_dry_run_of_p4_in_the_paper_preset(workflow_dir):
    """CIFAR-10/100 by dry run, counted by hand. Static: random, largest- and smallest-loss drops at 5
    keeps (0.5 ... 0.0004: 2 images per class) + the full data = 16 grid points; the early loss at
    keep 0.5 and 0.1: + 2; the causal effect (beta 0.1, three tails) at keep 0.5: + 3; IPC 10 and 50
    with and without pruning: + 4; CIFAR-100 at IPC 1 and 10: + 4. 29 grid points, each one
    distilled-set job and one evaluation job of 3 seeds (adaptive replicates start at 3); scores:
    CIFAR-10 random x3, loss_converge, loss_init, CIFAR-100 loss_converge."""
    counts = {claim: distillation_jobs(workflow_dir, claim, "preset=paper") for claim in ("P4-C1a", "P4-C4a", "P4-C5a", "P4-C5b")}
    assert counts == {"P4-C1a": (16, 16, 4), "P4-C4a": (4, 4, 1), "P4-C5a": (6, 6, 1), "P4-C5b": (4, 4, 1)}
    whole = job_counts(snakemake(workflow_dir, "-n", "all_figures", "--config", "preset=paper", "papers=[P4]").stdout)
    assert (whole["student"], whole["distilled"], whole["score"], whole["claim"]) == (29, 29, 6, 8)


def test_dry_run_of_p3_in_the_paper_preset(workflow_dir):
    """The CRD pairs on CIFAR-100 (resnet56 -> resnet20, resnet32x4 -> resnet8x4, wrn_40_2 ->
    wrn_16_2, vgg13 -> vgg8), counted by hand: the wrappers 4 pairs x 8 = 32 jobs, eta 4 x 3 = 12,
    weights 4 x 9 = 36; KD+LR at eta 0.8, alpha 0.5, scale 2 is one run in all three: 72 in all,
    with 4 teachers and 4 ds_influence scores (one per teacher)."""
    counts = {claim: claim_jobs(workflow_dir, claim, "preset=paper") for claim in ("P3-C1", "P3-C4a", "P3-C4b")}
    assert counts == {"P3-C1": (32, 4, 4), "P3-C4a": (12, 4, 0), "P3-C4b": (36, 4, 0)}
    whole = job_counts(snakemake(workflow_dir, "-n", "all_figures", "--config", "preset=paper", "papers=[P3]").stdout)
    assert sum(n for rule, n in whole.items() if rule.startswith("student")) == 72 and whole["score"] == 4


@pytest.mark.parametrize("stack_seeds, student_jobs, distilled_jobs", [("off", 261, 36), ("auto", 87, 12)])
def test_dry_run_of_the_whole_smoke_grid(workflow_dir, stack_seeds, student_jobs, distilled_jobs):
    out = snakemake(workflow_dir, "-n", "-p", "all_figures", "--config", f"stack_seeds={stack_seeds}")
    counts = job_counts(out.stdout + out.stderr)
    # Shared runs are one run: 78 + 18 (alpha, new) + 12 + 18 (capacity, chained) + 3 (teacher data,
    # chained, new: its full-data teacher's runs are capacity's resnet8 runs) = 129; in 43 jobs of 3
    # seeds unless stack_seeds is off (36 grid points + capacity's 6 + teacher data's 20% one).
    # P2 (resnet14 -> resnet8, the capacity ladder's resnet14 teacher): 6 selections x 2 keeps = 12
    # grid points; reshape at 0.3: 1 more; InfoBatch's experiment: mdslr at 0.7 and InfoBatch, each
    # with reshape off and on: 4; efficiency: mdslr at 0.5 reshaped and full data either way: 3.
    # 20 grid points of 3 seeds: 60 runs. Scores: + teacher_ce and herding of the teacher (one each).
    # P3 (the same resnet14 -> resnet8 pair, whole data): KD and DKD x LR off/on x DS off/on = 8;
    # eta 0.5 (0.8 is a wrappers point) = 1; alpha 0.5, 0.75 x scale 1, 2 at eta 0.8 = 3 new: 12
    # grid points, 36 runs. Scores: + ds_influence of the teacher (one); claims + 8.
    # P4 (test_dry_run_of_each_p4_claim_table): 12 grid points of 3 seeds, each a distilled-set job
    # and an evaluation job; scores + loss_converge, loss_init, random x3 (P1's random scores are
    # keyed the same: shared); claims + 7, figures + 5.
    jobs = sum(n for rule, n in counts.items() if rule.startswith("student"))
    assert (jobs, counts["teacher"], counts["score"], counts["claim"], counts["figure"]) == (student_jobs, 13, 29, 30, 28)
    assert sum(n for rule, n in counts.items() if rule.startswith("distilled") and rule != "distilled_images") == distilled_jobs
    assert counts["distilled_images"] == 4  # one image grid per P4 experiment
    assert counts["teacher_views"] == 10 and counts["compute"] == 1  # not P1-C7's 20% teachers (2 < 9 views)
    # Specs stay off the command line: each job looks itself up in the plan by kind and key.
    commands = [line for line in (out.stdout + out.stderr).splitlines() if "python -m kdprune" in line]
    assert max(map(len, commands)) < 600 and not (workflow_dir / "results").exists()  # a dry run writes no plan
    assert any(" run student --plan results/smoke/plan.json --key " in c for c in commands)


def test_each_preset_writes_its_own_figures(workflow_dir):
    """Runs at different presets never overwrite each other's ledger."""
    out = snakemake(workflow_dir, "-n", "all_figures", "--config", "preset=small")
    assert out.returncode == 0, out.stderr
    assert "paper_figures/small/claims.md" in out.stdout + out.stderr and "paper_figures/smoke/" not in out.stdout + out.stderr


def test_lint_is_clean(workflow_dir):
    out = snakemake(workflow_dir, "--lint")
    assert out.returncode == 0, out.stdout + out.stderr


def test_bad_config_stops_before_any_job_with_one_line(workflow_dir):
    out = snakemake(workflow_dir, "-n", "--config", "device=tpu")
    assert out.returncode != 0
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("kdprune:")]
    assert lines == ["kdprune: config: device = 'tpu' is not allowed: auto, cpu, cuda or cuda:N ('tpu' does not match '^(auto|cpu|cuda(:[0-9]+)?)$')"]
    assert not (workflow_dir / "results").exists()


def test_nested_command_line_values_keep_their_types(workflow_dir):
    """Snakemake hands the scalars inside a --config mapping over as strings ('5'); they are read as YAML."""
    out = snakemake(
        workflow_dir, "-n", "all_figures", "--config", "replicates={min: 3, max: 5}", "papers=[P4]", "distill={evaluation: {num_eval: 3}}"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    bad = snakemake(workflow_dir, "-n", "all_figures", "--config", "replicates={min: 3, max: five}")
    lines = [line for line in (bad.stdout + bad.stderr).splitlines() if line.startswith("kdprune:")]
    assert bad.returncode != 0 and lines and "replicates.max = 'five' is not allowed" in lines[0]


def test_a_missing_npz_dataset_stops_the_dry_run_with_one_line(workflow_dir):
    out = snakemake(workflow_dir, "-n", "--config", "dataset=npz:absent.npz")
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("kdprune:")]
    assert out.returncode != 0 and len(lines) == 1 and "dataset npz:absent.npz: file" in lines[0] and "not found" in lines[0]
    assert not (workflow_dir / "results").exists()


@pytest.mark.workflow
def test_smoke_preset_end_to_end(smoke_run):
    workflow_dir, out = smoke_run
    assert out.returncode == 0, out.stderr[-4000:]

    runs = pd.read_csv(workflow_dir / "results/smoke/runs.csv")
    evaluations = runs[runs.distill.notna()]  # P4's distilled sets' evaluations: checked below
    runs = runs[runs.distill.isna()]
    students, teachers = runs[runs.role == "student"], runs[runs.role == "teacher"]
    # 13 teachers: chained replicates of the two teacher-property experiments (P1-C6, P1-C7); P2's
    # resnet14 -> resnet8 pair reads the capacity ladder's resnet14 teacher (seed 0)
    assert len(teachers) == 13 and len(students) == 129 + 60 + 36
    p1 = {"random", "el2n-hardest", "grand-hardest", "forgetting-hardest", "moderate-medium", "ccs", "full"}
    assert set(students.selection) == p1 | {"herding-hardest", "mdslr", "mdslr_hard-hardest", "mdslr_easy-easiest", "infobatch_at_keep"}
    assert set(students.keep) == {0.2, 0.3, 0.5, 0.7, 1.0} and set(students.dataset) == {"digits", "digits+noise0.2"}
    assert students.final_acc.between(0.1, 1.0).all() and (teachers[(teachers.keep == 1.0) & (teachers.dataset == "digits")].final_acc > 0.9).all()
    clean = students[students.dataset == "digits"]
    assert (clean[clean.keep == 0.2].subset_size == 268).all()  # class-balanced 20% of 1347
    assert (clean[(clean.selection == "mdslr") & (clean.keep == 0.3)].subset_size == 400).all()  # MDSLR: int(1347 / 10 * 0.3) per class
    size = teachers.groupby("arch").n_params.first()
    assert size["resnet8"] < size["resnet14"] < size["resnet32"]
    assert set(students.teacher_params.dropna()) == set(size)
    assert runs.settings_hash.str.fullmatch(r"[0-9a-f]{12}").all() and runs.code_rev.notna().all()
    assert (runs.wall_seconds > 0).all() and (runs.train_images_per_s > 0).all() and set(runs.budget) == {"epochs"}
    # CPU: the plain accel mode; every KD student looked its teacher's logits up in the view table,
    # but those of P1-C7's 20% teachers, whose tables would cost more than they save (teacher_views: auto)
    assert set(runs.precision) == {"fp32"} and not runs.cuda_graphs.any()
    kd = students[students.loss == "kd"]
    assert (kd.teacher_views == (kd.teacher_keep == 1.0)).all() and not students[students.loss == "ce"].teacher_views.any()
    # stack_seeds auto on a CPU: each job trained its cell's 3 seeds one after the other, a chained
    # grid point's too (each seed with its own teacher)
    modes = students.groupby(["stack_mode", "stack_size"]).size().to_dict()
    assert modes == {("sequential", 3): 225} and set(teachers.stack_mode) == {"single"}
    chained = students[students.run_dir.str.contains("-chain")]
    assert len(chained) == 21 and (chained.teacher_seed == chained.seed).all()
    compute = pd.read_csv(workflow_dir / "paper_figures/smoke/compute.csv")
    total = compute[compute.role == "all"].iloc[0]
    # + P4: 36 distilled sets and their 36 evaluations, 2 more scores
    assert total.runs == 13 + 10 + 29 + 225 + 36 + 36 and total.wall_hours > 0 and total.gpu_hours == 0
    # P2: InfoBatch trains on fewer sample-steps than the full-data run it starts from; a reshaped
    # run names the k_y file it read; every KD run records the teacher-student gap on its kept images
    p2 = students[(students.teacher == "resnet14") & (students.loss == "kd") & (students.alpha == 0.9)]  # not P3's
    full = p2[p2.selection == "full"].sample_steps.mean()
    # InfoBatch at keep 0.7 spends 70% of the full run's sample-steps (to a sample per epoch), as the
    # MDSLR 70% subset does: P2-C3 compares them at matched cost
    infobatch = p2[p2.selection == "infobatch_at_keep"]
    assert (abs(infobatch.sample_steps - 0.7 * full) <= infobatch.epochs).all() and (infobatch.subset_size == 1347).all()
    assert (p2.subset_size * p2.epochs == p2.sample_steps)[p2.selection != "infobatch_at_keep"].all()
    assert set(p2.reshape) == {0.0, 1.0} and kd.ts_gap.notna().all() and kd.agreement_kept.between(0, 1).all()
    assert set(compute.role) == {"teacher", "teacher views", "score", "student", "distilled set", "all"}

    table = pd.read_csv(workflow_dir / "paper_figures/smoke/P1/P1-C1.csv")
    assert len(table) == 12 and (table.n_pairs == 3).all()  # 6 methods x 2 fractions (the claim is about pruned subsets)
    c1 = students[students.dataset == "digits"]
    kd = c1[
        (c1.loss == "kd")
        & (c1.selection == "random")
        & (c1.keep == 0.2)
        & (c1.teacher == "resnet8")
        & (c1.alpha == 0.9)
        & (c1.teacher_keep == 1.0)
        & (c1.teacher_seed == 0)
        & ~c1.run_dir.str.contains("-chain")  # the capacity ladder's chained seed 0 is the same run trained again
    ]
    row = table[(table.selection == "random") & (table.keep == 0.2)].iloc[0]
    assert len(kd) == 3 and row.treatment_mean == pytest.approx(kd.final_acc.mean())
    for claim in ("P1-C2", "P1-C3", "P1-C4", "P1-C5", "P1-C5n", "P1-C6", "P1-C7"):
        assert (workflow_dir / f"paper_figures/smoke/P1/{claim}.png").stat().st_size > 20_000
        assert len(pd.read_csv(workflow_dir / f"paper_figures/smoke/P1/{claim}.csv")) >= 1

    png = (workflow_dir / "paper_figures/smoke/P1/P1-C1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    for claim in ("P2-C1", "P2-C1h", "P2-C2", "P2-C3", "P2-C4a", "P2-C4b", "P2-C5"):
        assert (workflow_dir / f"paper_figures/smoke/P2/{claim}.png").stat().st_size > 20_000
        assert len(pd.read_csv(workflow_dir / f"paper_figures/smoke/P2/{claim}.csv")) >= 1

    ledger = json.loads((workflow_dir / "paper_figures/smoke/claims.json").read_text())
    p2_claims = ["P2-C1", "P2-C1h", "P2-C2", "P2-C3", "P2-C4a", "P2-C4b", "P2-C5"]
    p3_claims = ["P3-C1", "P3-C2a", "P3-C2b", "P3-C3a", "P3-C3b", "P3-C3c", "P3-C4a", "P3-C4b"]
    p1_claims = ["P1-C1", "P1-C2", "P1-C3", "P1-C4", "P1-C5", "P1-C5n", "P1-C6", "P1-C7"]
    p4_claims = ["P4-C1a", "P4-C1b", "P4-C2", "P4-C3", "P4-C4a", "P4-C4b", "P4-C5a"]
    assert [v["claim"] for v in ledger] == [*p1_claims, *p2_claims, *p3_claims, *p4_claims]
    (c1,) = [v for v in ledger if v["claim"] == "P2-C1"]  # the published number, whose setting smoke does not train
    assert c1["reported"][0]["value"] == 58.04 and c1["reported"][0]["status"] == "not in this preset's grid"
    assert all(v["verdict"] in {"supported", "not supported", "inconclusive"} and v["evidence"] is False for v in ledger)
    assert [v["claim"] for v in ledger if v["extension"]] == ["P1-C5n", "P1-C7"]
    md = (workflow_dir / "paper_figures/smoke/claims.md").read_text()
    assert "too small to count as evidence" in md and all(f"**{v['verdict']}**" in md for v in ledger)
    # P1-C3 has adaptive replicates in smoke (max 4, one round): its unresolved cell got seed 3
    seeds = pd.read_csv(workflow_dir / "paper_figures/smoke/claims.csv").set_index("claim").n_seeds
    round1 = json.loads((workflow_dir / "results/smoke/replicates/P1-C3/round1.json").read_text())
    assert seeds.drop("P1-C3").eq(3).all() and seeds["P1-C3"] == (4 if round1["metrics"] else 3)
    assert (
        all("/s3/" in p for p in round1["metrics"]) and json.loads((workflow_dir / "results/smoke/replicates/P1-C3/round2.json").read_text())["done"]
    )

    # P3: data selection hands 80% of the samples to the teacher (highest ds_influence first) and
    # says how many of the teacher's mistakes are among them; LR and DKD runs read the view table
    p3 = students[(students.teacher == "resnet14") & ~((students.loss == "kd") & (students.alpha == 0.9))]
    assert len(p3) == 36 and set(p3.loss) == {"kd", "dkd"} and (p3.selection == "full").all() and p3.teacher_views.all()
    selecting = p3[p3.supervise == 0.8]
    assert len(selecting) == 12 and (selecting.supervised_share.round(3) == round(round(0.8 * 1347) / 1347, 3)).all()
    assert selecting.wrong_supervised.between(0, 1).all() and p3.teacher_wrong_kept.between(0, 1).all()
    assert p3[p3.supervise == 1.0].supervised_share.isna().all()
    robust = pd.read_csv(workflow_dir / "paper_figures/smoke/P3/P3-C4b.csv")
    assert len(robust) == 6 and set(robust.setting_a) | set(robust.setting_b) == {f"alpha={a:g}, scale={x:g}" for a in (0.5, 0.75) for x in (1, 2)}
    best_of_four = pd.read_csv(workflow_dir / "paper_figures/smoke/P3/P3-C2b.csv")
    assert sorted(zip(best_of_four.control_revise, best_of_four.control_supervise)) == [(0.0, 0.8), (0.0, 1.0), (0.8, 1.0)]
    (c2a,) = [v for v in ledger if v["claim"] == "P3-C2a"]
    assert [(row["revise"], row["supervise"]) for row in c2a["context"]] == [(0.0, 0.8), (0.0, 1.0), (0.8, 0.8), (0.8, 1.0)]
    assert "## Context: the training samples the teacher gets wrong" in (workflow_dir / "paper_figures/smoke/P3/P3-C2a.md").read_text()
    for claim in p3_claims:
        assert (workflow_dir / f"paper_figures/smoke/P3/{claim}.png").stat().st_size > 20_000

    # P4: 12 grid points x 3 seeds, each an evaluation of its own distilled set, with the real images
    # its distillation read (class-balanced keep, BiLP's per-class drop count) and the time it took
    dd = evaluations
    assert len(dd) == 36 and (dd.role == "student").all() and set(dd.arch) == {"ConvNet"} and set(dd.distill) == {"dc"}
    assert set(dd.selection) == {"full", "random", "loss_converge-bilp_drop_large", "loss_init-bilp_drop_large"}
    real = dd.groupby(["selection", "keep"]).real_used.unique().map(list).to_dict()
    assert real[("full", 1.0)] == [1347] and real[("random", 0.1)] == [134] and real[("random", 0.015)] == [20]
    assert real[("loss_converge-bilp_drop_large", 0.1)] == [sum(n - int(0.9 * n) for n in DIGITS_CLASS_SIZES)]
    assert (dd.subset_size == 10 * dd.ipc).all() and (dd.num_eval == 2).all() and dd.final_acc.between(0.0, 1.0).all()
    assert (dd.distill_seconds > 0).all() and ((dd.ite_seconds > 0) == (dd.ite > 0)).all()
    assert set(zip(dd.ite, dd.ite_tails)) == {(0.0, "both"), (0.1, "both"), (0.1, "small"), (0.1, "large")}
    assert dd.groupby("seed").final_acc.nunique().gt(1).all()  # the grid points' sets differ
    for claim in ("P4-C1a", "P4-C2", "P4-C3", "P4-C4a", "P4-C5a"):
        assert (workflow_dir / f"paper_figures/smoke/P4/{claim}.png").stat().st_size > 20_000
    for experiment in ("p4_static", "p4_init", "p4_dynamic", "p4_ipc"):  # the distilled images
        assert (workflow_dir / f"paper_figures/smoke/P4/distilled/{experiment}.png").stat().st_size > 20_000
    (c3,) = [v for v in ledger if v["claim"] == "P4-C3"]  # LossInit vs LossConverge: a measurement beside the verdict
    (rho,) = c3["measure"]
    assert (rho["a"], rho["b"], rho["n"]) == ("loss_init-s0", "loss_converge-s0", 1347) and -1 <= rho["within_class_mean"] <= 1
    (c5a,) = [v for v in ledger if v["claim"] == "P4-C5a"]
    assert [r["value"] for r in c5a["reported"]] == [28.3, 44.9, 53.9, 30.5, 45.2, 54.9]
    assert all(r["status"] == "not in this preset's grid" for r in c5a["reported"])  # digits, not CIFAR-10
    c4b = pd.read_csv(workflow_dir / "paper_figures/smoke/P4/P4-C4b.csv")
    assert sorted(c4b.control_ite_tails) == ["large", "small"]  # both tails against each one-tailed drop
    assert "distilled by dc ipc 1" in md  # the ledger's setting of a distillation claim

    # Nothing left to do, and the report renders the figure and the ledger.
    again = snakemake(workflow_dir, "-n", "all_figures")
    assert "Nothing to be done" in again.stdout + again.stderr
    report = snakemake(workflow_dir, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (workflow_dir / "report.html").read_text(errors="replace")
    assert "P1-C1.png" in html and "claims.csv" in html


@pytest.mark.workflow
def test_one_table_target_builds_only_what_it_needs(workflow_dir):
    only_p1_c1(
        workflow_dir,
        {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3], "loss": {"ce": {}, "kd": {}}, "seed": [0, 1]},
        recipes={"teacher": {"epochs": 2}, "student": {"epochs": 2}, "score": {"epochs": 2}},
    )
    out = snakemake(workflow_dir, "--cores", "2", "paper_figures/smoke/P1/P1-C1.md")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (workflow_dir / "paper_figures/smoke/P1/P1-C1.md").is_file()
    assert not (workflow_dir / "paper_figures/smoke/claims.md").exists()  # the ledger was not asked for
    assert not (workflow_dir / "paper_figures/smoke/P1/P1-C1.png").exists()


@pytest.mark.workflow
def test_stacked_seeds_through_the_workflow(workflow_dir):
    """stack_seeds=stacked: one job per grid point trains its seeds as one network and writes each
    seed's own run folder; the runs table says how every run was trained."""
    only_p1_c1(
        workflow_dir,
        {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3], "loss": {"ce": {}, "kd": {}}, "seed": [0, 1]},
        recipes={"teacher": {"epochs": 2}, "student": {"epochs": 2}, "score": {"epochs": 2}},
    )
    out = snakemake(workflow_dir, "--cores", "2", "results/smoke/runs.csv", "--config", "stack_seeds=stacked")
    assert out.returncode == 0, out.stderr[-3000:]
    runs = pd.read_csv(workflow_dir / "results/smoke/runs.csv")
    students = runs[runs.role == "student"]
    assert len(students) == 4 and set(students.stack_mode) == {"stacked"} and set(students.stack_size) == {2}
    assert sorted(students.seed) == [0, 0, 1, 1] and students.subset_size.nunique() == 1
    logs = list((workflow_dir / "results/smoke/digits/students").rglob("train-s0-1.log"))
    assert len(logs) == 2 and all("(stacked)" in log.read_text() for log in logs)


@pytest.mark.workflow
def test_adaptive_replicates_add_seeds_in_rounds(workflow_dir):
    """A claim with replicates {min: 2, max: 3}: the first round trains 2 seeds; the checkpoint
    finds the cell unresolved (2 seeds cannot resolve it), the next round trains seed 2 for that
    cell's runs only, and the verdict is decided on 3 seeds with the rounds in the ledger."""
    only_p1_c1(
        workflow_dir,
        {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3, 1.0], "loss": {"ce": {}, "kd": {}}, "seed": [0, 1]},
        recipes={"teacher": {"epochs": 2}, "student": {"epochs": 2}, "score": {"epochs": 2}},
    )
    paper_file = workflow_dir / "workflow/papers/P1.yaml"
    paper = yaml.safe_load(paper_file.read_text())
    paper["claims"]["P1-C1"]["replicates"] = {"min": 2, "max": 3, "rounds": 2}
    paper_file.write_text(yaml.safe_dump(paper, sort_keys=False))
    dry = snakemake(workflow_dir, "-n", "paper_figures/smoke/claims.md")
    assert dry.returncode == 0 and "may add seeds" in dry.stdout + dry.stderr, dry.stderr[-2000:]
    out = snakemake(workflow_dir, "--cores", "2", "paper_figures/smoke/claims.md")
    assert out.returncode == 0, out.stderr[-3000:]
    round1 = json.loads((workflow_dir / "results/smoke/replicates/P1-C1/round1.json").read_text())
    assert round1["unresolved_cells"] and all("keep0.3" in p and "/s2/" in p for p in round1["metrics"])  # the keep-1.0 cell is not tested
    round2 = json.loads((workflow_dir / "results/smoke/replicates/P1-C1/round2.json").read_text())
    assert round2["done"] and round2["metrics"] == []  # at max: nothing more to add
    verdict = json.loads((workflow_dir / "results/smoke/claims/P1/P1-C1.json").read_text())
    assert [c["n_pairs"] for c in verdict["cells"]] == [3] and verdict["replicates"]["rounds_run"][0]["runs_added"] == len(round1["metrics"])
    assert not list((workflow_dir / "results/smoke/digits/students/resnet8-student/full").rglob("s2"))  # no seed 2 outside the cell
    assert "Adaptive (min 2, max 3 seeds" in (workflow_dir / "paper_figures/smoke/claims.md").read_text()


@pytest.mark.workflow
def test_the_main_commands_unlock_respects_a_live_run_and_clears_a_killed_ones(workflow_dir, tmp_path):
    """scripts/unlock_stale.sh, which scripts/main.sh runs first (issue #17): while a Snakemake run
    holds the folder's lock it refuses with one line naming the process; once that run is killed
    (SIGKILL, with a student mid-training: its lock stays) it removes the lock, and the run started
    again with --rerun-incomplete (as main.sh does) redoes no finished job, resumes the student
    from its checkpoint, and ends with the runs table and training histories of an uninterrupted
    run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from workflow_helpers import REPO

    grid = {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3], "loss": {"kd": {}}, "seed": [0]}
    recipes = {"teacher": {"epochs": 2}, "student": {"epochs": 60}, "score": {"epochs": 2}}  # the student is killed after its first epochs
    only_p1_c1(workflow_dir, grid, recipes)
    uninterrupted = copy_workflow(tmp_path / "uninterrupted")
    only_p1_c1(uninterrupted, grid, recipes)
    target = "results/smoke/runs.csv"
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", target],
        cwd=workflow_dir,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    unlock = ["bash", str(REPO / "scripts/unlock_stale.sh")]
    students = workflow_dir / "results/smoke/digits/students"
    try:
        deadline = time.time() + 300
        while not any(students.rglob("checkpoint.pt")) and time.time() < deadline:  # the student has trained an epoch
            assert run.poll() is None, "the workflow ended before its student wrote a checkpoint"
            time.sleep(0.2)
        held = subprocess.run(unlock, cwd=workflow_dir, capture_output=True, text=True)
        assert held.returncode == 1 and f"a running Snakemake (pid {run.pid}) holds the lock" in held.stderr, held.stderr
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert any((workflow_dir / ".snakemake/locks").iterdir())  # a killed run leaves its lock
    assert not list(students.rglob("metrics.json"))  # killed mid-training
    finished = {p: p.stat().st_mtime_ns for p in (workflow_dir / "results/smoke/digits/teachers").rglob("*") if p.is_file()}
    assert any(p.name == "model.pt" for p in finished)
    cleared = subprocess.run(unlock, cwd=workflow_dir, capture_output=True, text=True)
    assert cleared.returncode == 0 and cleared.stderr.count("\n") == 1 and "removing the lock a stopped Snakemake run left" in cleared.stderr
    assert not list((workflow_dir / ".snakemake").glob("locks/*"))
    again = snakemake(workflow_dir, "--cores", "2", target, "--rerun-incomplete")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # the finished teacher was not redone
    assert "resuming from" in next(students.rglob("train-s0.log")).read_text()
    whole = snakemake(uninterrupted, "--cores", "2", target)
    assert whole.returncode == 0, whole.stderr[-3000:]
    same = ["role", "arch", "keep", "seed", "final_acc", "best_acc", "best_epoch", "subset_size", "sample_steps", "settings_hash"]
    resumed_runs, whole_runs = (pd.read_csv(d / target) for d in (workflow_dir, uninterrupted))
    assert len(resumed_runs.query("role == 'student'")) == 1
    pd.testing.assert_frame_equal(resumed_runs[same], whole_runs[same])
    history = [
        json.loads(next((d / "results/smoke/digits/students").rglob("metrics.json")).read_text())["history"] for d in (workflow_dir, uninterrupted)
    ]
    assert [h["loss"] for h in history[0]] == [h["loss"] for h in history[1]] and len(history[0]) == 60
