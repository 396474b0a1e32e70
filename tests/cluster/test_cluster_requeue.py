"""Preemption and time limits: SLURM's USR2 reaches submitit's handler, the job's command is told at
once with SIGTERM, writes its checkpoint and exits 75, submitit requeues the job, and the requeued
run resumes to the result of an uninterrupted run.

The first tests run submitit's own job process (`python -m submitit.core._submit`, what srun
starts on the node) without SLURM, `scontrol` replaced by a slow PATH shim, to see what the
command gets and when. The others go through Snakemake and the plugin on the test cluster
(tests/cluster/test-cluster.sh)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_helpers import Background, child_signals, process_alive, run_snakemake, stop_a_training_student, write_workflow
from submitit.core.utils import DelayedSubmission, pickle_load

from snakemake_executor_plugin_submitit.command import ShellCommand

# A training loop in miniature: its state lives in memory and reaches the disk only when SIGTERM
# asks it to stop (at the next step, as kdprune's loops do), then it exits 75. A run resumes from
# that file. USR2 is left as inherited: ShellCommand's command ignores it.
TOY = """
import json, os, pathlib, signal, sys, time
out, steps, dt = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ckpt = pathlib.Path("checkpoint.json")
state = json.loads(ckpt.read_text()) if ckpt.exists() else {"step": 0, "acc": 1}
with open("starts.txt", "a") as starts:
    starts.write(f"{state['step']}\\n")
pathlib.Path("pid.txt").write_text(str(os.getpid()))
stop = []
signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(time.time()))
while state["step"] < steps:
    if stop:
        ckpt.with_suffix(".tmp").write_text(json.dumps(state))
        os.replace(ckpt.with_suffix(".tmp"), ckpt)
        with open("stopped.txt", "a") as stopped:
            stopped.write(f"{stop[0]} {state['step']}\\n")
        sys.exit(75)
    time.sleep(dt)
    state["acc"] = (state["acc"] * 48271 + state["step"]) % 2147483647
    state["step"] += 1
    pathlib.Path("progress.txt").write_text(str(state["step"]))
pathlib.Path(out).write_text(f"{state['acc']}\\n")
"""


def toy_workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.py").write_text(TOY)
    return path


def toy_workflow(path: Path, steps: int, dt: float) -> Path:
    """A workflow of one rule that runs the toy."""
    return write_workflow(
        toy_workdir(path),
        f"""
        rule train:
            output: "model.txt"
            shell: "python3 train.py {{output}} {steps} {dt}"
        """,
    )


def uninterrupted(tmp_path: Path, steps: int) -> str:
    """The toy's result without any signal (no sleeping: the result does not depend on it)."""
    work = toy_workdir(tmp_path / "uninterrupted")
    subprocess.run([sys.executable, "train.py", "out.txt", str(steps), "0"], cwd=work, check=True)
    return (work / "out.txt").read_text()


def starts(work: Path) -> list[int]:
    return [int(s) for s in (work / "starts.txt").read_text().split()]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def progress_at_least(work: Path, step: int) -> Callable[[], bool]:
    progress = work / "progress.txt"
    return lambda: progress.exists() and int(progress.read_text() or 0) >= step


# --- submitit's job process, without SLURM ---------------------------------------------------
JOB_ID = "4242"
SCONTROL_S = 3.0  # a slow controller: submitit's `scontrol requeue` takes this long


class SubmititJob:
    """One submitted ShellCommand, run the way srun runs it on a node, with PATH shims that log
    `scontrol` calls (each taking SCONTROL_S) instead of talking to a controller."""

    def __init__(self, tmp_path: Path, command: str, timeout_min: int, max_num_timeout: int):
        self.folder = tmp_path / "submitit"
        self.folder.mkdir()
        delayed = DelayedSubmission(ShellCommand(command, grace_s=10))
        delayed.set_timeout(timeout_min, max_num_timeout)  # what submitit's executor sets at submission
        delayed.dump(self.folder / f"{JOB_ID}_submitted.pkl")
        shims = tmp_path / "shims"
        shims.mkdir()
        self.scontrol_log = tmp_path / "scontrol.log"
        log = f'echo $(date +%s.%N) {{}} "$*" >> {self.scontrol_log}'
        (shims / "scontrol").write_text(f"#!/bin/sh\n{log.format('start')}\nsleep {SCONTROL_S}\n{log.format('end')}\n")
        (shims / "scontrol").chmod(0o755)
        self.env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": JOB_ID}
        self.env.pop("SUBMITIT_PREEMPT_SIGNAL", None)  # USR2, as the plugin submits
        self.log = tmp_path / "submitit.log"
        self.signalled_at = 0.0

    def start(self) -> subprocess.Popen[str]:
        with self.log.open("a") as log:
            return subprocess.Popen(
                [sys.executable, "-u", "-m", "submitit.core._submit", str(self.folder)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                preexec_fn=child_signals(),
            )

    def scontrol_calls(self) -> list[tuple[float, str, str]]:
        if not self.scontrol_log.exists():
            return []
        rows = [line.split(maxsplit=2) for line in self.scontrol_log.read_text().splitlines()]
        return [(float(t), what, args) for t, what, args in rows]

    @property
    def result(self) -> tuple[str, object] | None:
        path = self.folder / f"{JOB_ID}_0_result.pkl"
        return pickle_load(path) if path.exists() else None


def snakemake_line(work: Path) -> str:
    """The job's command: Snakemake running the toy's rule, as the plugin's jobs do."""
    return f"cd {work} && {sys.executable} -m snakemake --cores 1 --nocolor --quiet"


def preempt_mid_run(job: SubmititJob, work: Path, times: int = 1) -> subprocess.Popen[str]:
    """Start the job, and once the command is well into its steps send USR2 to submitit's process
    only (`times` times, 1 s apart): what the command gets then comes from ShellCommand, not from
    the signal itself (as on a site whose process tracking misses the command's session, or under
    the local executor)."""
    proc = job.start()
    wait_until(progress_at_least(work, 20), 30, "the toy's progress")
    job.signalled_at = time.time()
    for _ in range(times):
        if proc.poll() is None:
            proc.send_signal(signal.SIGUSR2)
            time.sleep(1)
    proc.wait(timeout=60)
    return proc


def test_preemption_signal_stops_the_command_at_once_and_the_requeued_run_resumes(tmp_path: Path) -> None:
    steps = 200
    work = toy_workflow(tmp_path / "job", steps, 0.02)
    # 60 minutes, signalled in the first one: a preemption, not a timeout (submitit's distinction)
    job = SubmititJob(tmp_path, snakemake_line(work), timeout_min=60, max_num_timeout=3)
    proc = preempt_mid_run(job, work, times=2)  # the second arrives during the slow requeue

    assert proc.returncode == 255, job.log.read_text()  # submitit's sys.exit(-1) after the requeue
    assert job.result is None  # no result file: the plugin keeps waiting for the requeued run
    assert [what for _, what, _ in job.scontrol_calls()] == ["start", "end"]  # requeued once
    calls = {what: (t, args) for t, what, args in job.scontrol_calls()}
    assert calls["start"][1] == f"requeue {JOB_ID}"
    told_at, stopped_step = (work / "stopped.txt").read_text().split()
    # told before submitit's requeue was through (the old order: only after it), and within a second
    assert job.signalled_at < float(told_at) < min(job.signalled_at + 1, calls["end"][0] - 1), (job.signalled_at, told_at, calls)
    assert not process_alive(int((work / "pid.txt").read_text()))  # stopped before submitit's process exited
    assert 20 <= int(stopped_step) < steps and json.loads((work / "checkpoint.json").read_text())["step"] == int(stopped_step)
    log = job.log.read_text()
    assert "this job is preempted" in log and "Requeued job 4242 (3 remaining timeouts)" in log
    # checkpoint() stored the same command for the requeued run
    delayed = DelayedSubmission.load(job.folder / f"{JOB_ID}_submitted.pkl")
    assert delayed.function == ShellCommand(snakemake_line(work), grace_s=10)

    rerun = job.start()  # what SLURM starts after the requeue
    assert rerun.wait(timeout=60) == 0, job.log.read_text()
    assert job.result == ("success", None)
    assert starts(work) == [0, int(stopped_step)]
    assert (work / "model.txt").read_text() == uninterrupted(tmp_path, steps)


def test_out_of_timeouts_the_command_still_checkpoints_and_the_job_fails(tmp_path: Path) -> None:
    """A job signalled once more than max_num_timeout allows is not requeued: it fails (Snakemake's
    --retries takes over), and its checkpoint is written all the same, so the retry resumes."""
    work = toy_workflow(tmp_path / "job", 200, 0.02)
    # 5 minutes: submitit counts any signal as a timeout below 10 minutes; none left
    job = SubmititJob(tmp_path, snakemake_line(work), timeout_min=5, max_num_timeout=0)
    proc = preempt_mid_run(job, work)
    assert proc.returncode != 0
    assert job.scontrol_calls() == []  # not requeued
    outcome, trace = job.result
    assert outcome == "error" and "timed-out too many times" in trace
    (line,) = (work / "stopped.txt").read_text().splitlines()
    assert json.loads((work / "checkpoint.json").read_text())["step"] == int(line.split()[1])
    assert not process_alive(int((work / "pid.txt").read_text()))


# --- through Snakemake and the plugin on the test cluster -----------------------------------------
def slurm_args(runtime_min: int, *more: str) -> tuple[str, ...]:
    return (
        "--executor",
        "submitit",
        "--jobs",
        "2",
        "--seconds-between-status-checks",
        "1",
        "--latency-wait",
        "5",
        "--default-resources",
        f"runtime={runtime_min}",
        "mem_mb=200",
        *more,
    )


def sacct_history(job_id: str) -> list[str]:
    """Every run of the job, oldest first (--duplicates: a requeued job's earlier runs too)."""
    done = subprocess.run(["sacct", "-X", "-n", "-P", "--duplicates", "-o", "State", "-j", job_id], capture_output=True, text=True, check=True)
    return done.stdout.split()


def job_log(workdir: Path, job_id: str, stream: str) -> str:
    """submitit's log of the job (both runs: srun appends), `out` (submitit's lines) or `err`."""
    (log,) = (workdir / ".snakemake/submitit").glob(f"*/{job_id}_0_log.{stream}")
    return log.read_text()


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(240)
def test_preempted_job_checkpoints_and_its_requeued_run_ends_as_an_uninterrupted_run(tmp_path: Path, background: Callable[..., Background]) -> None:
    steps = 80
    work = toy_workflow(tmp_path / "workflow", steps, 0.1)
    run = background(work, *slurm_args(15))  # 15 minutes: a signal in the first 5 is a preemption
    (job_id,) = run.wait_for_submissions(1)
    run.wait_for(progress_at_least(work, 10), 60, "the toy's progress")
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what SLURM sends on preemption
    finished = run.finish(timeout=120)

    assert finished.returncode == 0, finished.output
    assert finished.job_ids == [job_id] and "ended in state" not in finished.output  # the same job, no failure
    assert sacct_history(job_id) == ["REQUEUED", "COMPLETED"]
    stopped = int((work / "stopped.txt").read_text().split()[1])
    assert 10 <= stopped < steps and starts(work) == [0, stopped]  # checkpointed mid-run, resumed there
    assert (work / "model.txt").read_text() == uninterrupted(tmp_path, steps)
    out = job_log(work, job_id, "out")
    assert "this job is preempted" in out and f"Requeued job {job_id} (3 remaining timeouts)" in out
    # the first run's job failed inside (the toy's exit 75, or its shell's SIGTERM), and that was no
    # failure of the Snakemake job
    assert "Error in rule train" in job_log(work, job_id, "err")


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(240)
def test_time_limit_warning_requeues_the_job_and_it_resumes(tmp_path: Path) -> None:
    """--time=1 with --signal=USR2@55: SLURM warns at its first time-limit check (every 30 s) at
    least 5 s into the run; submitit counts it against max-num-timeout."""
    work = write_workflow(
        tmp_path,
        """
        rule wait:
            output: "done.txt"
            # runs until told (SIGTERM), saves, exits 75; the requeued run finds what it saved
            shell: "echo started >> starts.txt; test -e saved || {{ trap 'touch saved; exit 75' TERM; sleep 100 & wait; }}; touch {output}"
        """,
    )
    run = run_snakemake(work, *slurm_args(1, "--submitit-signal-delay-s", "55"), timeout=200)
    assert run.returncode == 0, run.output
    (job_id,) = run.job_ids
    history = sacct_history(job_id)
    assert history[-1] == "COMPLETED" and set(history[:-1]) == {"REQUEUED"}, history
    assert (work / "saved").exists() and (work / "done.txt").exists()
    out = job_log(work, job_id, "out")
    assert "this job is timed-out" in out and f"Requeued job {job_id} (2 remaining timeouts)" in out


@pytest.mark.cluster
@pytest.mark.workflow
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(1200)
def test_student_preempted_mid_epoch_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path: Path, background: Callable[..., Background]) -> None:
    """A real `python -m kdprune run student ...` job of the smoke plan, through the slurm profile:
    USR2 mid-training, the training loop writes its checkpoint mid-epoch and exits 75, the job is
    requeued and its rerun ends with the metrics of a local run that was never stopped."""
    stopped = stop_a_training_student(tmp_path, background, epochs=40, stop=["scancel", "--signal=USR2"])
    assert sacct_history(stopped.job_id) == ["REQUEUED", "COMPLETED"]
    assert "Caught signal SIGUSR2" in job_log(stopped.cluster_dir, stopped.job_id, "out")
    # the first run's job was stopped inside (kdprune's exit 75, or its shell's SIGTERM), which was no
    # failure; the rerun's log (the rule writes it anew) starts where the checkpoint left off
    assert "Error in rule student" in job_log(stopped.cluster_dir, stopped.job_id, "err")
    assert re.search(r"resuming from \S+/checkpoint.pt in epoch \d+ after step \d+", stopped.log)  # mid-epoch
    stopped.assert_equals_the_uninterrupted_run()


def preempting_partition() -> str | None:
    """A partition whose jobs requeue the default partition's jobs (PreemptType=preempt/partition_prio,
    PreemptMode=REQUEUE, a higher PriorityTier), if the cluster has one."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    if "preempt/partition_prio" not in config or not re.search(r"^PreemptMode\s*=\s*\S*REQUEUE", config, re.M):
        return None
    lines = subprocess.run(["scontrol", "-o", "show", "partition"], capture_output=True, text=True, check=True).stdout.splitlines()
    tiers = {re.search(r"PartitionName=(\S+)", line).group(1): int(re.search(r"PriorityTier=(\d+)", line).group(1)) for line in lines}
    (default,) = [re.search(r"PartitionName=(\S+)", line).group(1) for line in lines if "Default=YES" in line]
    higher = [name for name, tier in tiers.items() if tier > tiers[default]]
    return higher[0] if higher else None


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.timeout(240)
def test_job_preempted_by_slurm_is_requeued_and_resumes(tmp_path: Path, background: Callable[..., Background]) -> None:
    """A real preemption: a job of a higher-tier partition takes the node. SLURM sends SIGTERM (no
    USR2: submitit is not asked), requeues the job itself and records the run as PREEMPTED; the
    plugin must keep waiting for the requeued run instead of reporting a failure."""
    partition = preempting_partition()
    # tests/cluster/test-cluster.sh configures one (`high` preempts `debug`): without it the cluster setup regressed
    assert partition is not None, "the test cluster has no partition that preempts with requeue (tests/cluster/test-cluster.sh)"
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True).stdout.split()[0]
    steps = 80
    work = toy_workflow(tmp_path / "workflow", steps, 0.1)
    run = background(work, *slurm_args(15, f"cpus_per_task={cpus}"))  # the whole node: a preemptor needs it back
    (job_id,) = run.wait_for_submissions(1)
    run.wait_for(progress_at_least(work, 10), 60, "the toy's progress")
    subprocess.run(["sbatch", "-p", partition, "-c", cpus, "-o", "/dev/null", "--wrap", "sleep 1"], check=True)
    finished = run.finish(timeout=120)

    assert finished.returncode == 0, finished.output
    assert finished.job_ids == [job_id] and "ended in state" not in finished.output
    assert sacct_history(job_id) == ["PREEMPTED", "COMPLETED"]
    assert re.search(r"status queries: \d+ sacct, [1-9]\d* squeue", finished.output)  # the controller was asked
    stopped = int((work / "stopped.txt").read_text().split()[1])
    assert 10 <= stopped < steps and starts(work) == [0, stopped]
    assert (work / "model.txt").read_text() == uninterrupted(tmp_path, steps)
