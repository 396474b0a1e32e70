"""The submitit executor plugin against a real single-node SLURM (tests/cluster/test-cluster.sh):
scheduling with GPUs, batched polling, Ctrl-C, failures and retries, requeue and resume."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_helpers import (
    Background,
    Run,
    StatusCalls,
    process_alive,
    run_snakemake,
    squeue_active,
    write_workflow,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.usefixtures("slurm_cluster"),
    pytest.mark.timeout(240),
]

SLURM = (
    "--executor",
    "submitit",
    "--jobs",
    "10",
    "--seconds-between-status-checks",
    "1",
    "--latency-wait",
    "5",
    "--default-resources",
    "runtime=5",
    "mem_mb=200",
)


def submission_file(workdir: Path, job_id: str) -> str:
    (script,) = (workdir / ".snakemake/submitit").glob(f"*/{job_id}_submission.sh")
    return script.read_text()


def summary(run: Run) -> dict[str, int]:
    """The plugin's closing line: jobs submitted, status rounds, status queries per command."""
    line = re.search(r"submitit: (\d+) jobs submitted, (\d+) status rounds, status queries: (.*)", run.output)
    assert line, run.output
    counts = {cmd: int(n) for n, cmd in re.findall(r"(\d+) (sacct|squeue)", line.group(3))}
    return {"submitted": int(line.group(1)), "rounds": int(line.group(2)), **counts}


@pytest.mark.parametrize(
    ("gpu_request", "model", "flag"),
    [
        ("gpus", None, "#SBATCH --gpus=1"),
        ("gres", "fake", "#SBATCH --gres=gpu:fake:1"),
    ],
)
def test_jobs_complete_and_gpu_job_gets_a_gpu(tmp_path: Path, gpu_request: str, model: str | None, flag: str) -> None:
    model_resource = f', gpu_model="{model}"' if model else ""
    write_workflow(
        tmp_path,
        f"""
        rule all:
            input: expand("out/{{i}}.txt", i=range(3)), "gpu.txt"
        rule cpu:
            output: "out/{{i}}.txt"
            shell: "echo $SLURM_JOB_ID > {{output}}"
        rule gpu:
            output: "gpu.txt"
            resources: gpu=1{model_resource}
            shell: "echo ${{{{SLURM_JOB_GPUS:-}}}} ${{{{CUDA_VISIBLE_DEVICES:-}}}} > {{output}}"
        """,
    )
    run = run_snakemake(tmp_path, *SLURM, "--submitit-gpu-request", gpu_request)
    assert run.returncode == 0, run.output
    assert len(set(run.job_ids)) == 4
    slurm_ids = {(tmp_path / f"out/{i}.txt").read_text().strip() for i in range(3)}
    assert slurm_ids <= set(run.job_ids)  # each ran inside its own SLURM job
    assert re.fullmatch(r"\d+ \d+\n", (tmp_path / "gpu.txt").read_text())  # GPU index in both
    gpu_jobs = [j for j in run.job_ids if flag in submission_file(tmp_path, j)]
    assert len(gpu_jobs) == 1


def test_polling_makes_one_status_query_per_round(tmp_path: Path, status_calls: StatusCalls) -> None:
    n_jobs = 6
    write_workflow(
        tmp_path,
        f"""
        rule all:
            input: expand("out/{{i}}.txt", i=range({n_jobs}))
        rule work:
            output: "out/{{i}}.txt"
            shell: "sleep 3; touch {{output}}"
        """,
    )
    run = run_snakemake(tmp_path, *SLURM, env=status_calls.env())
    assert run.returncode == 0, run.output
    calls = status_calls.calls()
    counts = summary(run)
    # every query the plugin made went through the shim, all of them sacct
    assert [c[1] for c in calls] == ["sacct"] * counts["sacct"]
    # one query per round (not one per job), and rounds are 1 s apart
    assert counts["sacct"] == counts["rounds"] <= run.seconds / 1 + 2
    ids_per_call = [len(c[c.index("-j") + 1].split(",")) for c in calls]
    assert max(ids_per_call) == n_jobs  # all active jobs in one call
    per_minute = 60 * len(calls) / run.seconds
    print(f"\n{len(calls)} sacct calls for {n_jobs} jobs in {run.seconds:.1f} s ({per_minute:.0f}/min at 1 s between rounds)")


def test_squeue_fallback_without_accounting(tmp_path: Path, broken_sacct: StatusCalls) -> None:
    write_workflow(
        tmp_path,
        """
        rule all:
            input: expand("out/{i}.txt", i=range(2))
        rule work:
            output: "out/{i}.txt"
            shell: "sleep 2; touch {output}"
        """,
    )
    run = run_snakemake(tmp_path, *SLURM, env=broken_sacct.env())
    assert run.returncode == 0, run.output
    assert "polling with squeue from now on" in run.output
    assert len(broken_sacct.calls("sacct")) == 1  # tried once, then never again
    assert summary(run)["squeue"] == len(broken_sacct.calls("squeue")) >= 1


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_every_stop_signal_leaves_no_job_in_the_queue(tmp_path: Path, background: Callable[..., Background], stop: signal.Signals) -> None:
    """Ctrl-C, `kill <pid>` and a closed terminal: one scancel for running and pending jobs alike,
    within seconds, and the running jobs' commands are gone (the test cluster is this machine)."""
    write_workflow(
        tmp_path,
        """
        rule all:
            input: expand("out/{i}.txt", i=range(4))
        rule slow:
            output: "out/{i}.txt"
            # jobs 2 and 3 are submitted held: PENDING for as long as nobody releases them
            resources: slurm_extra=lambda wildcards: "--hold" if int(wildcards.i) >= 2 else ""
            shell: "echo $$ > pid.{wildcards.i}; sleep 120; touch {output}"
        """,
    )
    run = background(tmp_path, *SLURM)
    ids = run.wait_for_submissions(4)
    pids = [tmp_path / f"pid.{i}" for i in range(2)]
    run.wait_for(
        lambda: (
            sorted(line.split()[1] for line in squeue_active(ids)) == ["PENDING", "PENDING", "RUNNING", "RUNNING"]
            and all(p.exists() and p.read_text().strip() for p in pids)
        ),
        60,
        "2 jobs running, 2 pending",
    )
    run.proc.send_signal(stop)
    finished = run.finish(timeout=30)  # Snakemake's own SIGTERM answer waits for every job
    assert finished.returncode != 0
    assert "cancelled 4 job(s)" in finished.output  # with one scancel call
    deadline = time.monotonic() + 20  # KillWait=5 s: jobs may show COMPLETING briefly
    while squeue_active(ids) or any(process_alive(int(p.read_text())) for p in pids):
        assert time.monotonic() < deadline, squeue_active(ids)
        time.sleep(0.5)
    assert not list(tmp_path.glob("out/*.txt"))


def test_failure_is_reported_with_log_and_retried(tmp_path: Path) -> None:
    write_workflow(
        tmp_path,
        """
        rule all:
            input: "flaky.txt", "broken.txt"
        rule flaky:
            output: "flaky.txt"
            resources: runtime=lambda wildcards, attempt: 1 + attempt
            shell: "test {resources.runtime} -ge 3 || exit 1; echo ok > {output}"
        rule broken:
            output: "broken.txt"
            shell: "echo boom-from-broken >&2; exit 3"
        """,
    )
    run = run_snakemake(tmp_path, *SLURM, "--retries", "1", "--keep-going")
    assert run.returncode != 0
    assert (tmp_path / "flaky.txt").read_text() == "ok\n"  # failed once, passed on the retry
    assert len(run.job_ids) == 4  # flaky twice, broken twice
    assert "ended in state FAILED" in run.output
    logs = re.findall(r"submitit stderr: (\S+)", run.output)
    assert any("boom-from-broken" in Path(log).read_text() for log in logs)


TRAIN = """
import pathlib, sys, time
progress = pathlib.Path("progress.txt")
step = int(progress.read_text()) if progress.exists() else 0  # resume, like checkpoint.pt
with open("starts.txt", "a") as starts:
    starts.write(f"{step}\\n")
while step < 30:
    time.sleep(0.2)
    step += 1
    progress.write_text(str(step))
pathlib.Path(sys.argv[1]).write_text("trained\\n")
"""


@pytest.mark.parametrize("interruption", ["scontrol requeue", "preemption signal"])
def test_requeued_job_is_rerun_and_resumes(tmp_path: Path, background: Callable[..., Background], interruption: str) -> None:
    write_workflow(
        tmp_path,
        """
        rule train:
            output: "model.txt"
            shell: "python3 train.py {output}"
        """,
        files={"train.py": TRAIN},
    )
    run = background(tmp_path, *SLURM)
    (job_id,) = run.wait_for_submissions(1)
    progress = tmp_path / "progress.txt"
    run.wait_for(lambda: progress.exists() and int(progress.read_text() or 0) >= 5, 60, "progress")
    if interruption == "scontrol requeue":  # what an admin or a node failure does
        subprocess.run(["scontrol", "requeue", job_id], check=True)
    else:  # what SLURM sends before a preemption or the time limit: submitit checkpoints
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    finished = run.finish(timeout=120)
    assert finished.returncode == 0, finished.output
    starts = [int(s) for s in (tmp_path / "starts.txt").read_text().split()]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] >= 5, starts  # resumed, not restarted
    assert (tmp_path / "model.txt").read_text() == "trained\n"
    assert finished.job_ids == [job_id]  # the same SLURM job again, not a Snakemake retry
    history = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--duplicates", "-o", "State", "-j", job_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "REQUEUED" in history and history[-1] == "COMPLETED", history
