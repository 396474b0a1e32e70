"""The profiles (slurm/, profiles/local/, profiles/slurm-smoke/) on a toy workflow with the real
workflow's rule names, and the documented `snakemake --profile slurm -n all_figures`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from cluster_helpers import REPO, run_snakemake, write_workflow
from workflow_helpers import only_p1_c1

# The real workflow's rules: compute rules go to the cluster, aggregation rules are localrules.
TOY = """
localrules: all, runs_table, claim, figure, ledger

rule all:
    input: "ledger.txt"
rule teacher:
    output: "teacher.txt"
    shell: "echo ${{SLURM_JOB_ID:-local}} > {output}"
rule score:
    output: "score_{i}.txt"
    shell: "echo ${{SLURM_JOB_ID:-local}} > {output}"
rule student:
    input: "teacher.txt", "score_{i}.txt"
    output: "student_{i}.txt"
    shell: "echo ${{SLURM_JOB_ID:-local}} > {output}"
rule runs_table:
    input: expand("student_{i}.txt", i=range(3))
    output: "runs.txt"
    shell: "cat {input} > {output}"
rule claim:
    input: "runs.txt"
    output: "claim.txt"
    shell: "cp {input} {output}"
rule figure:
    input: "runs.txt"
    output: "figure.txt"
    shell: "cp {input} {output}"
rule ledger:
    input: "claim.txt", "figure.txt"
    output: "ledger.txt"
    shell: "cat {input} > {output}"
"""
SLURM = ("--profile", str(REPO / "slurm"))
SMOKE = (*SLURM, "--profile", str(REPO / "profiles/slurm-smoke"))
# Test-cluster speed: poll every second, outputs are on a local disk.
FAST = ("--seconds-between-status-checks", "1", "--latency-wait", "5")


def job_resources(output: str) -> dict[str, str]:
    """rule name -> its `resources:` line, from a dry run's job listing."""
    found = re.findall(r"^\s*rule (\w+):\n(?:\s+\w+:.*\n)*?\s+resources: (.*)$", output, re.M)
    return dict(found)


@pytest.mark.parametrize("profiles", [SLURM, SMOKE], ids=["slurm", "slurm+smoke"])
def test_profile_dry_run_gives_every_compute_job_a_runtime(tmp_path: Path, profiles: tuple[str, ...]) -> None:
    run = run_snakemake(write_workflow(tmp_path, TOY), *profiles, "-n")
    assert run.returncode == 0, run.output
    resources = job_resources(run.output)
    # the plugin refuses a job without a time limit
    assert all("runtime=" in resources[rule] for rule in ("teacher", "score", "student")), resources


def test_local_profile_runs_everything_here(tmp_path: Path) -> None:
    run = run_snakemake(write_workflow(tmp_path, TOY), "--profile", str(REPO / "profiles/local"))
    assert run.returncode == 0, run.output
    assert (tmp_path / "ledger.txt").exists()


def copy_repo(dest: Path) -> Path:
    for name in ("Snakefile", "config.yaml", "workflow", "slurm", "profiles"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, dest / name)
    return dest


def test_documented_command_dry_run(tmp_path: Path) -> None:
    """`snakemake --profile slurm -n all_figures`, as written, from a copy of the repository
    root (the profile found by name in the working directory; no SLURM needed)."""
    run = run_snakemake(copy_repo(tmp_path), "--profile", "slurm", "-n", "all_figures")
    assert run.returncode == 0, run.output
    assert "Using profile slurm" in run.output
    resources = job_resources(run.output)
    assert {"teacher", "score", "student"} <= set(resources)
    assert all("runtime=" in resources[rule] for rule in ("teacher", "score", "student"))


def test_rules_of_other_seed_lists_get_the_student_resources(tmp_path: Path) -> None:
    """An experiment with its own seed list trains under rule student_seeds_<list>: the profile's
    GPU, runtime and memory for `student` must reach it (as they reach student_replicate, the rule
    of seeds adaptive rounds add: one loop in workflow/rules/train.smk, which a dry run cannot show)."""
    workdir = copy_repo(tmp_path)
    grid = {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3, 1.0], "loss": {"ce": {}}, "seed": [0, 1, 2]}
    two_seeds = {**grid, "keep": [0.3], "loss": {"kd": {}}, "seed": [0, 1]}
    only_p1_c1(workdir, grid, extra={"p1_alpha": two_seeds})
    run = run_snakemake(workdir, "--profile", "slurm", "-n", "all_figures")
    assert run.returncode == 0, run.output

    def requests(line: str) -> dict[str, str]:
        pairs = dict(item.split("=", 1) for item in line.split(", "))
        return {k: v for k, v in pairs.items() if not k.startswith("disk")}  # disk: <TBD> until inputs exist

    resources = job_resources(run.output)
    assert requests(resources["student_seeds_0_1"]) == requests(resources["student"])
    assert {"gpu": "1", "runtime": "360"}.items() <= requests(resources["student_seeds_0_1"]).items()


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(240)
def test_slurm_profile_requests_are_schedulable(tmp_path: Path) -> None:
    run = run_snakemake(write_workflow(tmp_path, TOY), *SLURM, *FAST)
    assert run.returncode == 0, run.output
    assert len(run.job_ids) == 7  # teacher, 3 scores, 3 students; the rest ran locally
    scripts = [p.read_text() for p in (tmp_path / ".snakemake/submitit").glob("*/*_submission.sh")]
    assert len(scripts) == 7
    assert all("#SBATCH --gpus=1" in s and "#SBATCH --requeue" in s for s in scripts)


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(240)
def test_smoke_overlay_packs_short_jobs(tmp_path: Path) -> None:
    run = run_snakemake(write_workflow(tmp_path, TOY), *SMOKE, *FAST)
    assert run.returncode == 0, run.output
    assert len(run.job_ids) == 3  # teacher, one pack of 3 scores, one pack of 3 students
    packs = [
        p.read_text()
        for p in (tmp_path / ".snakemake/submitit").glob("*/*_submission.sh")
        if "#SBATCH --job-name=snakejob.students" in p.read_text() or "#SBATCH --job-name=snakejob.scores" in p.read_text()
    ]
    assert len(packs) == 2
    # `cores: 2` is the width of a pack: 2 CPUs, no GPU, runtime summed over 2 layers
    assert all("#SBATCH --cpus-per-task=2" in p and "--gpus" not in p and "#SBATCH --time=20" in p for p in packs), packs
